#!/usr/bin/env bash
# Exercises the deployment scripts for real, end to end, on a throwaway PostgreSQL cluster:
#   - starts a cluster (initdb + pg_ctl as the postgres OS user, TLS with a CA made here, a free
#     port on 127.0.0.1, Deploy/bureau/postgresql.cardsync.conf included, so the settings file is
#     known to load);
#   - runs setup-central.sh twice (it must be idempotent), puts the pg_hba.conf lines it prints
#     in front of the cluster's, reloads;
#   - installs the merge service with install-merge-service.sh --root into a temporary tree;
#   - registers an agency with the staff login, hands out its credentials, and runs
#     install-agency.sh --root into a temporary tree (also --dry-run, and again);
#   - syncs that agency's queue with its own role over verify-full TLS, from the environment
#     file install-agency.sh wrote, while the merge runs as the service would (merge --follow with
#     the environment file setup-central.sh wrote), then stops the merge with SIGTERM (exit 0);
#   - checks that the agency's role is refused without TLS and may not merge.
# Removes the cluster and everything else when it ends. Needs root (it runs PostgreSQL as the
# postgres OS user) and PostgreSQL 15 server binaries; skips (exit 0) without them.
#
#   Deploy/bureau/test-deployment.sh [PATH-TO-cardsync]     (default: .build/debug/cardsync)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cardsync=${1:-$repo/.build/debug/cardsync}
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}

skip() { printf 'test-deployment.sh: skipped: %s\n' "$*"; exit 0; }
fail() { printf 'test-deployment.sh: FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '\n### %s\n' "$*"; }
[ "$(id -u)" -eq 0 ] || skip "needs root (PostgreSQL runs as the postgres OS user)"
[ -x "$pgbin/initdb" ] || skip "no PostgreSQL server binaries in $pgbin (set PGBIN)"
id -u postgres >/dev/null 2>&1 || skip "no postgres OS user"
[ -x "$cardsync" ] || fail "no cardsync binary at $cardsync (swift build --product cardsync)"
cardsync=$(realpath "$cardsync")

tmp=$(mktemp -d /tmp/cardsync-deploy-test.XXXXXX)
chmod 0755 "$tmp"
pgdata=$tmp/pgdata sock=$tmp/sock
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
cleanup() {
    if [ -f "$pgdata/postmaster.pid" ]; then as_postgres "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
    if [ -n "${merge_pid:-}" ]; then kill "$merge_pid" 2>/dev/null || true; fi
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
# A copy: the build directory's binary may be rebuilt while this runs.
install -D -m 0755 "$cardsync" "$tmp/bin/cardsync"
cardsync=$tmp/bin/cardsync
"$cardsync" --version >/dev/null || fail "$cardsync does not run"

# A free TCP port on the loopback, as the kernel hands one out.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

step "Throwaway cluster on 127.0.0.1:$port with TLS"
install -d -o postgres -g postgres -m 0700 "$pgdata" "$tmp/wal-archive"
install -d -o postgres -g postgres -m 0755 "$sock" "$tmp/log"
as_postgres "$pgbin/initdb" -D "$pgdata" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
# A CA and a server certificate for "localhost", as the bureau's would be for its host name.
(
    cd "$tmp"
    openssl req -x509 -new -newkey rsa:2048 -nodes -days 2 -subj "/CN=cardsync test CA" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null
)
install -o postgres -g postgres -m 0600 "$tmp/server.key" "$pgdata/server.key"
install -o postgres -g postgres -m 0644 "$tmp/server.crt" "$pgdata/server.crt"
install -o postgres -g postgres -m 0644 "$repo/Deploy/bureau/postgresql.cardsync.conf" "$pgdata/cardsync.conf"
# The recommended file as it is, then what only a throwaway cluster changes (later lines win).
cat >>"$pgdata/postgresql.conf" <<EOF
include 'cardsync.conf'
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
archive_command = 'test ! -f $tmp/wal-archive/%f && cp %p $tmp/wal-archive/%f'
max_connections = 100
shared_buffers = 128MB
effective_cache_size = 1GB
maintenance_work_mem = 64MB
max_wal_size = 1GB
min_wal_size = 80MB
fsync = off
EOF
as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$tmp/log/server.log" -w start >/dev/null || { cat "$tmp/log/server.log"; fail "the cluster did not start (postgresql.cardsync.conf?)"; }
for setting in ssl password_encryption wal_level archive_mode log_lock_waits idle_in_transaction_session_timeout statement_timeout; do
    printf '  %s = %s\n' "$setting" "$(as_postgres psql -X -At -h "$sock" -p "$port" -d postgres -c "SHOW $setting")"
done

step "setup-central.sh (first run)"
umask 077
openssl rand -base64 24 >"$tmp/owner.password"
# With every character that needs escaping somewhere: in pgpass (: \), in a URI (% & # ? @ / +),
# in an environment file (' "), to the shell ($ `).
printf '%s:\\%%&#?@/+'"'"'"$`x\n' "$(openssl rand -base64 18)" >"$tmp/merge.password"
openssl rand -base64 24 >"$tmp/clerk.password"
setup=(
    "$repo/Deploy/bureau/setup-central.sh" --psql-as postgres --admin "host=$sock port=$port dbname=postgres"
    --host localhost --port "$port" --sslmode verify-full --sslrootcert "$tmp/ca.crt"
    --owner-password-file "$tmp/owner.password" --merge-password-file "$tmp/merge.password"
    --bureau-login clerk_test --bureau-password-file "$tmp/clerk.password"
    --merge-env "$tmp/etc/merge.env" --agency-network 127.0.0.1/32 --agency-network ::1/128 --cardsync "$cardsync"
)
"${setup[@]}" | tee "$tmp/setup-1.log"
[ "$(stat -c %a "$tmp/etc/merge.env")" = 600 ] || fail "merge.env is not mode 0600"
# No password in anything it printed.
for f in owner merge clerk; do
    ! grep -qF -- "$(cat "$tmp/$f.password")" "$tmp/setup-1.log" || fail "the $f password appears in setup-central.sh's output"
done

step "pg_hba.conf: the printed lines first, then reload"
sed -n '/^# TYPE /,/^# Owner: /p' "$tmp/setup-1.log" | grep -v '^#' >"$tmp/hba.lines"
[ -s "$tmp/hba.lines" ] || fail "no pg_hba.conf lines printed"
cat "$tmp/hba.lines" "$pgdata/pg_hba.conf" >"$tmp/pg_hba.conf"
install -o postgres -g postgres -m 0600 "$tmp/pg_hba.conf" "$pgdata/pg_hba.conf"
as_postgres "$pgbin/pg_ctl" -D "$pgdata" reload >/dev/null
sleep 1
cat "$tmp/hba.lines"

step "setup-central.sh (second run: idempotent, under the new pg_hba.conf)"
"${setup[@]}" >"$tmp/setup-2.log" || { cat "$tmp/setup-2.log"; fail "the second run failed"; }
grep -q "Every privilege matches the model" "$tmp/setup-2.log" || fail "db roles not clean on the second run"
echo "ok"

# The staff login, as bureau staff would use it: a pgpass file, the URI without a password.
printf '*:*:cardsync:clerk_test:%s\n' "$(cat "$tmp/clerk.password")" >"$tmp/clerk.pgpass"
clerk_url="postgresql://clerk_test@localhost:$port/cardsync?sslmode=verify-full&sslrootcert=$tmp/ca.crt"
as_clerk() { env -u CARDSYNC_DATABASE_URL PGPASSFILE="$tmp/clerk.pgpass" "$cardsync" "$@" --database "$clerk_url"; }

step "setup-central.sh refuses a connection that is not a superuser's"
printf '*:*:*:clerk_test:%s\n' "$(cat "$tmp/clerk.password")" >"$tmp/clerk-any.pgpass"
# The same arguments but --psql-as postgres --admin … (elements 1 to 4): psql as root, over TCP.
not_super=("${setup[0]}" "${setup[@]:5}" --admin "host=localhost port=$port dbname=postgres user=clerk_test sslmode=require")
if PGPASSFILE=$tmp/clerk-any.pgpass "${not_super[@]}" >"$tmp/not-super.log" 2>&1; then fail "setup-central.sh ran as a non-superuser"; fi
grep -q "run this as a PostgreSQL superuser" "$tmp/not-super.log" || { cat "$tmp/not-super.log"; fail "unexpected failure"; }
echo "ok"

step "install-merge-service.sh --dry-run, then --root (twice)"
broot=$tmp/bureau-root
install -d -m 0755 "$broot/etc/cardsync"
install -m 0600 "$tmp/etc/merge.env" "$broot/etc/cardsync/merge.env"
"$repo/Deploy/bureau/install-merge-service.sh" --root "$broot" --dry-run --binary "$cardsync"
[ ! -e "$broot/usr" ] || fail "--dry-run wrote into $broot"
"$repo/Deploy/bureau/install-merge-service.sh" --root "$broot" --binary "$cardsync"
"$repo/Deploy/bureau/install-merge-service.sh" --root "$broot" --binary "$cardsync" >/dev/null
grep -q '^cardsync-merge:' "$broot/etc/passwd" || fail "no cardsync-merge user"
[ -L "$broot/etc/systemd/system/multi-user.target.wants/cardsync-merge.service" ] || fail "cardsync-merge.service is not enabled"
echo "ok: user, unit, enabled"

step "A generated agency, registered and given credentials by the bureau"
"$cardsync" generate "$tmp/gen" --agencies 1 --applications 40 --months 1 --seed 7 >/dev/null
gen_queue=$(dirname "$(find "$tmp/gen" -name agency.json | head -n 1)")
code=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["agency"]["code"])' "$gen_queue/agency.json")
name=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["agency"]["name"])' "$gen_queue/agency.json")
echo "agency $code ($name)"
as_clerk agency add "$code" --name "$name"
as_clerk agency credentials "$code" --host localhost --port "$port" --json >"$tmp/$code.credentials.json"

step "install-agency.sh --dry-run (changes nothing)"
root=$tmp/root
"$repo/Deploy/agency/install-agency.sh" "$code" --root "$root" --dry-run --binary "$cardsync" \
    --credentials "$tmp/$code.credentials.json" --ca "$tmp/ca.crt" --name "$name"
[ ! -e "$root" ] || [ -z "$(find "$root" -mindepth 1 | head -n 1)" ] || fail "--dry-run wrote into $root"

step "install-agency.sh --root (first run, then again without credentials)"
# The counter software's account, as the agency's machine would have it.
mkdir -p "$root/etc"
printf 'u counter - "counter software" /home/counter\n' | systemd-sysusers --root="$root" - >/dev/null
install_agency=("$repo/Deploy/agency/install-agency.sh" "$code" --root "$root" --binary "$cardsync" --name "$name" --counter-user counter)
"${install_agency[@]}" --credentials "$tmp/$code.credentials.json" --ca "$tmp/ca.crt"
"${install_agency[@]}" >"$tmp/install-2.log" || { cat "$tmp/install-2.log"; fail "the second install-agency.sh run failed"; }
queue=$root/var/lib/cardsync/queues/$code
env_file=$root/etc/cardsync/$code.env
check_mode() { [ "$(stat -c '%a %U' "$1")" = "$2" ] || fail "$1 is $(stat -c '%a %U' "$1"), expected $2"; }
grep -q '^cardsync:' "$root/etc/passwd" || fail "no cardsync user in $root/etc/passwd"
grep -Eq '^cardsync:x:[0-9]+:(.*,)?counter(,|$)' "$root/etc/group" || fail "counter is not a member of group cardsync"
uid=$(awk -F: '$1 == "cardsync" { print $3 }' "$root/etc/passwd")
check_mode "$env_file" "600 root"
[ "$(stat -c '%a %u' "$queue")" = "2770 $uid" ] || fail "the queue directory is $(stat -c '%a %u' "$queue")"
[ "$(stat -c '%a %u' "$queue/outbox.jsonl")" = "660 $uid" ] || fail "outbox.jsonl is $(stat -c '%a %u' "$queue/outbox.jsonl")"
[ -L "$root/etc/systemd/system/timers.target.wants/cardsync-sync@$code.timer" ] || fail "the timer is not enabled"
grep -q "^kept: /etc/cardsync/$code.env" "$tmp/install-2.log" || fail "the second run did not keep the environment file"
! grep -qF -- "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["password"])' "$tmp/$code.credentials.json")" "$tmp/install-2.log" ||
    fail "the agency's password appears in install-agency.sh's output"
echo "ok: user, queue, modes, environment file, timer"

# The generated events, as if the counter software had written them.
cp "$gen_queue/outbox.jsonl" "$queue/outbox.jsonl"
# The agency's environment, as systemd would give it to the service; its CA path is the
# target system's, which here lies under $root.
# with_env FILE COMMAND...: COMMAND in the environment FILE gives, as systemd would give it to
# the service; the CA path in it is the target system's, which here lies under $root.
with_env() {
    local file=$1; shift
    (
        set -a
        # shellcheck disable=SC1090 # written by install-agency.sh
        . "$file"
        set +a
        export CARDSYNC_DATABASE_URL=${CARDSYNC_DATABASE_URL//\/etc\/cardsync\//$root\/etc\/cardsync\/}
        exec "$@"
    )
}
agency_env() { with_env "$env_file" "$@"; }

step "The agency syncs with its own role before any merge runs: events staged, not merged"
agency_env "$cardsync" sync "$queue" --merge-wait 0 --json >"$tmp/sync-1.json"
python3 - "$tmp/sync-1.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))["totals"]
assert t.get("unmerged", 0) > 0, f"expected staged, unmerged events: {t}"
print(f"staged {t['unmerged']} event(s), pushed {t['pushed']}")
EOF

step "The merge service (merge --follow, environment from setup-central.sh --merge-env)"
(
    set -a
    # shellcheck disable=SC1091 # written by setup-central.sh above
    . "$tmp/etc/merge.env"
    set +a
    exec "$cardsync" merge --follow --json
) >"$tmp/merge.json" 2>"$tmp/merge.err" &
merge_pid=$!
# The events are staged already, so a sync has nothing of its own to wait for: sync until one
# reports nothing unmerged (the merge may still be starting), adding up what each reports.
pushed=0 unmerged=1
for _ in $(seq 1 60); do
    agency_env "$cardsync" sync "$queue" --merge-wait 0 --json >"$tmp/sync-2.json"
    read -r p u < <(python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["totals"]; print(t["pushed"], t.get("unmerged", 0))' "$tmp/sync-2.json")
    pushed=$((pushed + p)) unmerged=$u
    [ "$unmerged" -gt 0 ] || break
    sleep 0.5
done
[ "$unmerged" -eq 0 ] || { cat "$tmp/merge.err"; fail "events still unmerged after 30 s of merge --follow"; }
[ "$pushed" -gt 0 ] || fail "the merge applied nothing"
echo "merged: $pushed event(s) new in the ledger"
kill -TERM "$merge_pid"
merge_status=0
wait "$merge_pid" || merge_status=$?
merge_pid=""
[ "$merge_status" -eq 0 ] || { cat "$tmp/merge.err"; fail "merge --follow exited $merge_status on SIGTERM"; }
python3 -c 'import json, sys; t = json.load(open(sys.argv[1])); assert t["batches"] > 0, t; print("merge stopped on SIGTERM, exit 0, batches merged:", t["batches"])' "$tmp/merge.json"

step "Rotation: new credentials from the bureau, install-agency.sh with the new file"
cp "$env_file" "$tmp/old.env"
as_clerk agency credentials "$code" --host localhost --port "$port" --json >"$tmp/$code.rotated.json"
"${install_agency[@]}" --credentials "$tmp/$code.rotated.json" --ca "$tmp/ca.crt" >/dev/null
! cmp -s "$env_file" "$tmp/old.env" || fail "the environment file did not change"
agency_env "$cardsync" sync "$queue" --merge-wait 0 >/dev/null || fail "no sync with the rotated credentials"
if with_env "$tmp/old.env" "$cardsync" sync "$queue" --merge-wait 0 >"$tmp/old.log" 2>&1; then fail "the old password still works"; fi
grep -q "password authentication failed" "$tmp/old.log" || { cat "$tmp/old.log"; fail "unexpected failure with the old password"; }
echo "ok: the new password works, the old one is refused"

step "What the agency's role may not do"
# shellcheck disable=SC2016 # expanded by the inner shell, in the agency's environment
plain_url=$(agency_env sh -c 'printf %s "$CARDSYNC_DATABASE_URL"' | sed 's/sslmode=verify-full/sslmode=disable/')
if env CARDSYNC_DATABASE_URL="$plain_url" "$cardsync" sync "$queue" >"$tmp/plain.log" 2>&1; then
    fail "the agency's role synced without TLS"
fi
grep -q "pg_hba.conf rejects connection" "$tmp/plain.log" || { cat "$tmp/plain.log"; fail "unexpected error without TLS"; }
echo "ok: refused without TLS"
if agency_env "$cardsync" merge >"$tmp/agency-merge.log" 2>&1; then fail "the agency's role was allowed to merge"; fi
grep -q "only the bureau merges" "$tmp/agency-merge.log" || { cat "$tmp/agency-merge.log"; fail "unexpected refusal"; }
echo "ok: may not merge"

step "Nothing secret in the server log"
for f in owner merge clerk; do
    ! grep -qF -- "$(cat "$tmp/$f.password")" "$tmp/log/server.log" || fail "the $f password is in the server log"
done
# A verifier is "SCRAM-SHA-256$4096:salt$…" (the migrations' own text mentions the prefix).
! grep -Eq 'SCRAM-SHA-256[$][0-9]+:' "$tmp/log/server.log" || fail "a SCRAM verifier is in the server log"
echo "ok"

printf '\ntest-deployment.sh: all checks passed\n'
