#!/usr/bin/env bash
# Static checks of everything that deploys cardsync; exits 1 on any finding:
#   1. shellcheck on every *.sh under Deploy/ and Fuzz/, and on .ci/run;
#   2. systemd-analyze verify on every unit in Deploy/systemd, then `systemd-analyze security`
#      (offline) on the services, failing above an exposure of 2.0 (they are at 1.2 now: a
#      hardening line lost in an edit shows here), and systemd-sysusers on the sysusers.d files;
#   3. Deploy/container/check.sh (the container recipe, without a container engine).
# Installs shellcheck (and systemd-analyze) with apt-get when missing: as root, or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

findings=0
finding() { printf 'lint: %s\n' "$*" >&2; findings=$((findings + 1)); }
section() { printf '\n== %s\n' "$*"; }

# need COMMAND PACKAGE: installs PACKAGE when COMMAND is missing. `apt-get update` first when the
# package lists are empty (a fresh container), so that the install can find anything at all.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { printf 'lint: %s is missing and installing %s needs root\n' "$1" "$2" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "installing $2 (for $1)"
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] ||
        ! apt-cache show "$2" >/dev/null 2>&1; then
        "${sudo[@]}" apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

# --- 1. shell scripts ------------------------------------------------------------------------------
section "shellcheck"
need shellcheck shellcheck
scripts=()
while IFS= read -r -d '' f; do scripts+=("$f"); done < <(find Deploy Fuzz -type f -name '*.sh' -print0 2>/dev/null | sort -z)
[ ! -f .ci/run ] || scripts+=(.ci/run)
printf '%s\n' "${scripts[@]}"
# Every severity, style included: the scripts are short enough to keep clean.
shellcheck --external-sources "${scripts[@]}" || finding "shellcheck found problems (above)"

# --- 2. systemd units ------------------------------------------------------------------------------
section "systemd units"
need systemd-analyze systemd
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# verify insists that ExecStart's binary exists and is executable, and the units name the
# installed /usr/local/bin/cardsync, which a build machine does not have. So the units are
# checked as copies whose paths point at a stub; nothing else in them changes. A template
# (name@.service) cannot be verified as such, only an instance of it: each is copied as
# name@TEST.service, and its timer as name@TEST.timer, so the timer finds its service.
install -d "$work/bin" "$work/units"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/cardsync"
chmod 0755 "$work/bin/cardsync"
units=()
for unit in Deploy/systemd/*.service Deploy/systemd/*.timer Deploy/systemd/*.socket Deploy/systemd/*.path; do
    [ -e "$unit" ] || continue
    name=$(basename "$unit")
    case "$name" in *@.*) name=${name/@./@TEST.} ;; esac
    sed "s|/usr/local/bin/cardsync|$work/bin/cardsync|g" "$unit" >"$work/units/$name"
    units+=("$work/units/$name")
    printf '%s (as %s)\n' "$unit" "$name"
done
# verify exits 0 on some warnings (an unknown key, a bad value it ignores): any output is a finding.
if ! (cd "$work/units" && systemd-analyze verify "${units[@]}") >"$work/verify.log" 2>&1 || [ -s "$work/verify.log" ]; then
    cat "$work/verify.log" >&2
    finding "systemd-analyze verify found problems (above)"
fi
for unit in "${units[@]}"; do
    case "$unit" in *.service) ;; *) continue ;; esac
    # --threshold counts in tenths: 20 is an exposure of 2.0.
    if ! systemd-analyze security --offline=true --threshold=20 "$unit" >"$work/security.log" 2>&1; then
        grep -E '✗|Overall' "$work/security.log" >&2 || cat "$work/security.log" >&2
        finding "$(basename "$unit"): exposure above 2.0 (systemd-analyze security)"
    else
        grep 'Overall' "$work/security.log" || true
    fi
done
# The sysusers.d files, applied to an empty root: a syntax error fails here, not on a server.
for conf in Deploy/agency/*.sysusers.conf Deploy/bureau/*.sysusers.conf; do
    [ -e "$conf" ] || continue
    rm -rf "$work/sysroot" && mkdir -p "$work/sysroot/etc"
    # Anything but "Creating group/user …" in its output is a complaint about the file.
    if systemd-sysusers --root="$work/sysroot" - <"$conf" >"$work/sysusers.log" 2>&1 &&
        ! grep -qv '^Creating ' "$work/sysusers.log"; then
        printf '%s ok\n' "$conf"
    else
        cat "$work/sysusers.log" >&2
        finding "$conf: systemd-sysusers refused it"
    fi
done

# --- 3. container recipe ---------------------------------------------------------------------------
section "container recipe"
Deploy/container/check.sh || finding "Deploy/container/check.sh found problems (above)"

echo
if [ "$findings" -gt 0 ]; then
    printf 'lint: %d finding(s)\n' "$findings" >&2
    exit 1
fi
echo "lint: clean"
