#!/usr/bin/env bash
# Installs cardsync's periodic sync on an agency's machine (docs/deploy.md, "An agency"):
#   - the binary, as /usr/local/bin/cardsync;
#   - the system user and group `cardsync` (systemd-sysusers), and optionally the counter
#     software's OS user as a member of the group, so it may append to the outbox and read the
#     inbox;
#   - the queue /var/lib/cardsync/queues/CODE (`cardsync queue init`): owned by cardsync, mode
#     2770, outbox.jsonl and the queue lock writable by the group;
#   - /etc/cardsync/CODE.env, root only (0600), with CARDSYNC_DATABASE_URL taken from the
#     credentials file the bureau handed over (`cardsync agency credentials CODE --json`), and the
#     bureau's CA certificate as /etc/cardsync/bureau-ca.pem;
#   - cardsync-sync@.service and .timer, and enables (and starts) cardsync-sync@CODE.timer.
# Safe to run again: it changes only what differs. Run again without --credentials, it keeps the
# environment file it wrote before; with a new credentials file (after a rotation), it replaces it.
#
#   Deploy/agency/install-agency.sh CS-FR-001 --binary ./cardsync \
#       --credentials /media/usb/CS-FR-001.credentials.json --ca /media/usb/bureau-ca.pem \
#       --name 芙蓉区社保卡服务网点 --counter-user counter
#
# --root DIR installs into DIR instead of / (users into DIR/etc/passwd, the timer enabled by
# symlink, nothing started): for trying it out and for tests. --dry-run only says what it would do.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
deploy=$(dirname "$here")

usage() {
    cat <<'EOF'
usage: install-agency.sh CODE [options]

  --binary PATH         the cardsync binary to install (default: keep the installed one)
  --credentials FILE    the bureau's `cardsync agency credentials CODE --json` output (or a
                        file holding just the URI); needed the first time and after a rotation
  --ca FILE             the bureau's CA certificate (for sslmode=verify-full)
  --name NAME, --district DISTRICT, --channel counter|online
                        the agency's identity in agency.json, the first time (queue init)
  --counter-user USER   the counter software's OS user: joins group cardsync
  --allow-weak-tls      accept a URI whose sslmode is not verify-full
  --no-start            install and enable, but do not start the timer now
  --root DIR            install under DIR instead of / (tests, images); starts nothing
  --dry-run             print what would be done, change nothing
  -h, --help
EOF
}

die() { printf 'install-agency.sh: %s\n' "$*" >&2; exit 1; }
note() { printf '%s\n' "$*"; }

code="" binary="" credentials="" ca="" name="" district="" channel="" counter_user=""
allow_weak_tls=false start=true root="" dry_run=false
need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi; }
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) need_value "$@"; binary=$2; shift 2 ;;
        --credentials) need_value "$@"; credentials=$2; shift 2 ;;
        --ca) need_value "$@"; ca=$2; shift 2 ;;
        --name) need_value "$@"; name=$2; shift 2 ;;
        --district) need_value "$@"; district=$2; shift 2 ;;
        --channel) need_value "$@"; channel=$2; shift 2 ;;
        --counter-user) need_value "$@"; counter_user=$2; shift 2 ;;
        --allow-weak-tls) allow_weak_tls=true; shift ;;
        --no-start) start=false; shift ;;
        --root) need_value "$@"; root=$2; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; exit 2 ;;
        *) [ -z "$code" ] || { usage >&2; exit 2; }; code=$1; shift ;;
    esac
done
[ -n "$code" ] || { usage >&2; exit 2; }
# The queue format's rule for agency codes (shared/spec/queue-format.md). Every such code is also
# a valid systemd instance name as it is, so the unit's %i is the code.
[[ $code =~ ^[A-Z0-9][A-Z0-9-]{1,31}$ ]] || die "invalid agency code \"$code\": 2 to 32 characters A-Z, 0-9 and '-'"
case "$channel" in ""|counter|online) ;; *) die "--channel is counter or online" ;; esac
[ -z "$binary" ] || [ -x "$binary" ] || die "not an executable file: $binary"
[ -z "$credentials" ] || [ -r "$credentials" ] || die "cannot read $credentials"
[ -z "$ca" ] || [ -r "$ca" ] || die "cannot read $ca"
if [ -n "$root" ]; then
    $dry_run || mkdir -p "$root"
    root=$(realpath -m "$root")
    [ "$root" != / ] || root=""
fi
if [ -z "$root" ] && ! $dry_run; then
    [ "$(id -u)" -eq 0 ] || die "installing into / needs root (or try it with --root DIR)"
fi

# Paths on the target system, and where they are under --root.
bin=/usr/local/bin/cardsync
queues=/var/lib/cardsync/queues
queue=$queues/$code
etc=/etc/cardsync
env_file=$etc/$code.env
ca_file=$etc/bureau-ca.pem
units=/etc/systemd/system
role="cardsync_agency_$(printf '%s' "$code" | tr 'A-Z-' 'a-z_')"

# run CMD...: runs it, or with --dry-run shows it. Never given a secret: those are written by
# write_private below, whose dry run names the file only.
run() {
    if $dry_run; then printf 'would run:'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}
# write_private DEST MODE: stdin into DEST through a temporary file in the same directory,
# renamed into place, so a reader sees the old file or the whole new one, never a part, and the
# mode is set before anything is written.
write_private() {
    local dest=$1 mode=$2 tmp
    if $dry_run; then cat >/dev/null; note "would write $dest (mode $mode)"; return; fi
    tmp=$(mktemp "$(dirname "$dest")/.$(basename "$dest").XXXXXX")
    chmod "$mode" "$tmp"
    cat >"$tmp"
    mv -f "$tmp" "$dest"
}
# same FILE1 FILE2: whether both exist with the same bytes (nothing to copy then).
same() { [ -e "$1" ] && [ -e "$2" ] && cmp -s "$1" "$2"; }
# install_file SRC DEST MODE: copies when the content differs.
install_file() {
    if same "$1" "$2"; then note "unchanged: ${2#"$root"}"; return; fi
    run install -D -m "$3" "$1" "$2"
    $dry_run || note "installed: ${2#"$root"}"
}
# A user's uid or gid as the target system knows it (its passwd/group, also under --root).
lookup_id() {
    local db=$1 entry=$2
    # Nothing (not a failure) when there is no such entry or, on a new --root, no file yet.
    if [ -z "$root" ]; then
        getent "$db" "$entry" | cut -d: -f3 || true
    else
        awk -F: -v e="$entry" '$1 == e { print $3 }' "$root/etc/$db" 2>/dev/null || true
    fi
}

# --- credentials -------------------------------------------------------------------------------
uri=""
if [ -n "$credentials" ]; then
    # The JSON's "uri" (and "agency_code", to refuse another agency's file). Values are plain
    # ASCII here (cardsync's passwords use letters and digits): a value with a JSON escape in it is
    # refused rather than guessed at. A file holding only the URI is taken as it is.
    json_field() { sed -n "s/^[[:space:]]*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"\\\\]*\)\"[[:space:]]*,\{0,1\}[[:space:]]*$/\1/p" "$credentials"; }
    if grep -q '"uri"' "$credentials"; then
        uri=$(json_field uri)
        file_code=$(json_field agency_code)
        [ -n "$uri" ] || die "$credentials: no plain \"uri\" value (is it cardsync agency credentials --json output?)"
        [ "$file_code" = "$code" ] || die "$credentials holds the credentials of agency \"$file_code\", not $code"
    else
        IFS= read -r uri <"$credentials" || true
    fi
    case "$uri" in postgresql://*|postgres://*) ;; *) die "$credentials: not a postgresql:// URI" ;; esac
    [[ $uri == *"://$role:"* || $uri == *"://$role@"* ]] || die "$credentials: the URI is not for role $role (agency $code)"
    [[ $uri != *"'"* ]] || die "$credentials: a quote in the URI"
    case "$uri" in *"?host=/"*|*"?host=%2F"*|*"&host=/"*|*"&host=%2F"*)
        die "$credentials: the URI names a Unix socket on the bureau's machine; ask the bureau to run cardsync agency credentials $code --host THEIR-SERVER-NAME" ;;
    esac
    # add_param KEY=VALUE: appended to the URI's query.
    add_param() { if [[ $uri == *\?* ]]; then uri+="&$1"; else uri+="?$1"; fi; }
    # The CA installed here, replacing any path from the bureau's machine.
    if [ -n "$ca" ]; then
        uri=$(printf '%s' "$uri" | sed -E 's/([?&])sslrootcert=[^&]*&?/\1/; s/[?&]$//')
        add_param "sslrootcert=$ca_file"
    fi
    # The bureau then sees which agency a session is in pg_stat_activity and in its log.
    [[ $uri == *application_name=* ]] || add_param "application_name=cardsync-$code"
    if [[ $uri != *sslmode=verify-full* ]]; then
        $allow_weak_tls || die "the URI does not verify the server (sslmode=verify-full): an agency sends children's identity numbers; ask the bureau, or pass --allow-weak-tls for a trial"
        printf 'warning: the URI does not use sslmode=verify-full\n' >&2
    elif [[ $uri != *sslrootcert=* ]] && [ ! -r "$root/var/lib/cardsync/.postgresql/root.crt" ]; then
        die "sslmode=verify-full needs the bureau's CA certificate: give it with --ca FILE"
    fi
elif [ ! -e "$root$env_file" ] && ! $dry_run; then
    die "no --credentials and no $env_file yet: give the credentials file the bureau handed over"
fi
if [ -z "$binary" ] && [ ! -x "$root$bin" ]; then
    $dry_run || die "no --binary and no $bin yet: give the cardsync binary to install"
fi
# Before anything changes, and because a sysusers "m" line would create a user that does not
# exist (a typo) rather than fail.
if [ -n "$counter_user" ] && [ -z "$(lookup_id passwd "$counter_user")" ]; then
    die "no such user on this system: $counter_user (the counter software's account)"
fi

# --- binary, users, units ----------------------------------------------------------------------
note "== cardsync for agency $code${root:+ under $root}"
[ -z "$binary" ] || install_file "$binary" "$root$bin" 0755
install_file "$here/cardsync.sysusers.conf" "$root/etc/sysusers.d/cardsync.conf" 0644
if [ -n "$counter_user" ]; then
    # A sysusers "m" line makes it a member the same way on every run and after a reinstall.
    printf '# The counter software appends to its queue'"'"'s outbox and reads its inbox.\nm %s cardsync\n' "$counter_user" |
        write_private "$root/etc/sysusers.d/cardsync-counter.conf" 0644
fi
# systemd-sysusers creates what is missing and leaves what exists (also under --root, in its
# passwd and group files); useradd is the fallback on a machine without it.
# sysusers FILE: applies one sysusers.d file (under --root it reads FILE from stdin: given as a
# path, it would look for it outside the root).
sysusers() {
    if [ -z "$root" ]; then run systemd-sysusers "$1"
    elif $dry_run; then note "would run: systemd-sysusers --root=$root - < $root$1"
    else systemd-sysusers --root="$root" - <"$root$1"
    fi
}
if command -v systemd-sysusers >/dev/null 2>&1; then
    $dry_run || mkdir -p "$root/etc"
    sysusers /etc/sysusers.d/cardsync.conf
    [ -z "$counter_user" ] || sysusers /etc/sysusers.d/cardsync-counter.conf
else
    [ -n "$(lookup_id passwd cardsync)" ] ||
        run useradd ${root:+--root "$root"} --system --user-group --home-dir /var/lib/cardsync --no-create-home --shell /usr/sbin/nologin cardsync
    [ -z "$counter_user" ] || run usermod ${root:+--root "$root"} -a -G cardsync "$counter_user"
fi
# The units' Documentation= points here.
[ ! -f "$deploy/../docs/deploy.md" ] || install_file "$deploy/../docs/deploy.md" "$root/usr/local/share/doc/cardsync/deploy.md" 0644
install_file "$deploy/systemd/cardsync-sync@.service" "$root$units/cardsync-sync@.service" 0644
install_file "$deploy/systemd/cardsync-sync@.timer" "$root$units/cardsync-sync@.timer" 0644

# --- queue -------------------------------------------------------------------------------------
uid=$(lookup_id passwd cardsync); gid=$(lookup_id group cardsync)
if [ -z "$uid" ] && ! $dry_run; then die "user cardsync was not created"; fi
# chown needs root; a test under --root as another user gets the tree without the owners.
can_chown=true
[ "$(id -u)" -eq 0 ] || { can_chown=false; printf 'note: not root: files keep your ownership\n' >&2; }
own() { if $can_chown; then run chown "${uid:-cardsync}:${gid:-cardsync}" "$@"; fi; }

# /var/lib/cardsync and queues: root's, enterable by all (the counter software finds its queue).
# The queue: the sync (owner) and the counter software (group) only; setgid, so every file made
# in it belongs to group cardsync whoever makes it.
run install -d -m 0755 "$root/var/lib/cardsync" "$root$queues"
run install -d -m 2770 "$root$queue"
own "$root$queue"
run chmod 2770 "$root$queue"
init=("$root$bin" queue init "$root$queue" --agency "$code")
[ -z "$name" ] || init+=(--name "$name")
[ -z "$district" ] || init+=(--district "$district")
[ -z "$channel" ] || init+=(--channel "$channel")
# Creates agency.json and an empty outbox the first time; on a queue that exists it changes
# nothing, and refuses (exit 1) an identity that contradicts agency.json: another agency's queue.
if $dry_run && [ ! -x "$root$bin" ]; then run "$bin" "${init[@]:1}"; else run "${init[@]}"; fi
# The lock file is opened read-write by every cardsync touching the queue, the counter's
# `queue append` included: made here group-writable, or the first sync would make it 0640.
[ -e "$root$queue/.cardsync.lock" ] || run install -m 0660 /dev/null "$root$queue/.cardsync.lock"
for f in agency.json outbox.jsonl .cardsync.lock; do
    own "$root$queue/$f"
done
run chmod 0640 "$root$queue/agency.json"
run chmod 0660 "$root$queue/outbox.jsonl" "$root$queue/.cardsync.lock"

# --- environment file and CA -------------------------------------------------------------------
run install -d -m 0755 "$root$etc"
[ -z "$ca" ] || install_file "$ca" "$root$ca_file" 0644
if [ -n "$uri" ]; then
    {
        echo "# cardsync-sync@$code.service: agency $code's own role at the bureau ($role)."
        echo "# Written by Deploy/agency/install-agency.sh from the bureau's credentials file. Root only:"
        echo "# systemd reads it before it starts the sync as user cardsync. Single quotes: taken literally."
        printf "CARDSYNC_DATABASE_URL='%s'\n" "$uri"
    } | write_private "$root$env_file" 0600
    if $can_chown && ! $dry_run; then chown 0:0 "$root$env_file"; fi
    $dry_run || note "wrote: $env_file (root only)"
else
    note "kept: $env_file"
fi

# --- enable ------------------------------------------------------------------------------------
timer="cardsync-sync@$code.timer"
if [ -n "$root" ]; then
    # Offline: the [Install] symlink under DIR; nothing runs.
    run systemctl --root="$root" enable "$timer"
else
    run systemctl daemon-reload
    if $start; then run systemctl enable --now "$timer"; else run systemctl enable "$timer"; fi
fi

if $dry_run; then note "Dry run: nothing was changed."; exit 0; fi
cat <<EOF

Done. The queue: $queue
Counter software appends events to $queue/outbox.jsonl (or runs cardsync queue append) and
reads decisions from inbox.jsonl. Check a run now and then:
  systemctl start cardsync-sync@$code.service; journalctl -u cardsync-sync@$code.service -n 50
  systemctl list-timers 'cardsync-sync@*'
${credentials:+Delete the credentials file now that it is installed (shred -u $credentials): the password lives in $env_file.}
EOF
