#!/usr/bin/env bash
# Installs the bureau's merge service (cardsync merge --follow as cardsync-merge.service) on the
# machine that runs it, usually the database server (docs/deploy.md, "The bureau"):
#   - the binary, as /usr/local/bin/cardsync;
#   - the system user cardsync-merge (systemd-sysusers);
#   - cardsync-merge.service, enabled and started.
# The environment file /etc/cardsync/merge.env (root only, with the merge login's URI) must exist
# first: setup-central.sh --merge-env /etc/cardsync/merge.env writes it. Safe to run again; a new
# binary is picked up by the restart this does when anything changed.
#
#   Deploy/bureau/install-merge-service.sh --binary .build/release/cardsync
#
# --root DIR installs under DIR instead of / (enables by symlink, starts nothing); --dry-run only
# says what it would do.
set -euo pipefail

deploy=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<'EOF'
usage: install-merge-service.sh [--binary PATH] [--no-start] [--root DIR] [--dry-run]
EOF
}
die() { printf 'install-merge-service.sh: %s\n' "$*" >&2; exit 1; }
note() { printf '%s\n' "$*"; }

binary="" start=true root="" dry_run=false
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) [ $# -ge 2 ] || die "--binary needs a value"; binary=$2; shift 2 ;;
        --no-start) start=false; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a value"; root=$2; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[ -z "$binary" ] || [ -x "$binary" ] || die "not an executable file: $binary"
if [ -n "$root" ]; then
    $dry_run || mkdir -p "$root"
    root=$(realpath -m "$root")
    [ "$root" != / ] || root=""
fi
if [ -z "$root" ] && ! $dry_run; then
    [ "$(id -u)" -eq 0 ] || die "installing into / needs root (or try it with --root DIR)"
fi

bin=/usr/local/bin/cardsync
unit=/etc/systemd/system/cardsync-merge.service
env_file=/etc/cardsync/merge.env

run() { if $dry_run; then printf 'would run:'; printf ' %q' "$@"; printf '\n'; else "$@"; fi; }
changed=false
install_file() {
    if [ -e "$2" ] && cmp -s "$1" "$2"; then note "unchanged: ${2#"$root"}"; return; fi
    run install -D -m "$3" "$1" "$2"
    changed=true
}

# The environment file first: without it the service would not start (it is required, and
# without CARDSYNC_DATABASE_URL cardsync would use an embedded database instead).
if [ ! -e "$root$env_file" ]; then
    $dry_run || die "no $env_file: run setup-central.sh --merge-env $env_file first"
    note "note: $env_file does not exist yet (setup-central.sh --merge-env writes it)"
elif [ "$(stat -c '%a %u' "$root$env_file")" != "600 0" ]; then
    if $dry_run || [ "$(id -u)" -ne 0 ]; then
        note "note: $env_file should be root's with mode 0600"
    else
        chown 0:0 "$root$env_file"; chmod 600 "$root$env_file"; note "fixed: $env_file is now root:root 0600"
    fi
fi

[ -n "$binary" ] || [ -x "$root$bin" ] || $dry_run || die "no --binary and no $bin yet: give the cardsync binary to install"
[ -z "$binary" ] || install_file "$binary" "$root$bin" 0755
install_file "$(dirname "$0")/cardsync-merge.sysusers.conf" "$root/etc/sysusers.d/cardsync-merge.conf" 0644
if [ -z "$root" ]; then
    run systemd-sysusers /etc/sysusers.d/cardsync-merge.conf
elif $dry_run; then
    note "would run: systemd-sysusers --root=$root - < $root/etc/sysusers.d/cardsync-merge.conf"
else
    # Given as a path under --root, sysusers would look for the file outside the root.
    systemd-sysusers --root="$root" - <"$root/etc/sysusers.d/cardsync-merge.conf"
fi
# The unit's Documentation= points here (a new copy is no reason to restart the merge).
merge_changed=$changed
[ ! -f "$deploy/../docs/deploy.md" ] || install_file "$deploy/../docs/deploy.md" "$root/usr/local/share/doc/cardsync/deploy.md" 0644
changed=$merge_changed
install_file "$deploy/systemd/cardsync-merge.service" "$root$unit" 0644

if [ -n "$root" ]; then
    run systemctl --root="$root" enable cardsync-merge.service
else
    run systemctl daemon-reload
    run systemctl enable cardsync-merge.service
    if $start; then
        # restart, not start: a new binary or unit takes effect; the running merge finishes its
        # batch first (SIGTERM).
        if $changed; then run systemctl restart cardsync-merge.service; else run systemctl start cardsync-merge.service; fi
    fi
fi
if $dry_run; then note "Dry run: nothing was changed."; exit 0; fi
cat <<'EOF'

Done. Watch it with:
  systemctl status cardsync-merge.service
  journalctl -u cardsync-merge.service -f
EOF
