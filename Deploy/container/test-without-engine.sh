#!/usr/bin/env bash
# Runs compose.yaml's services' scripts as the containers would, but as processes on this machine,
# for a machine without a container engine (CI): init.sh makes the password and certificates, a
# throwaway PostgreSQL 15 cluster starts as the db service would (db-settings.sh, the recommended
# settings, pg_hba.conf of the compose file, the same -c overrides), setup.sh runs
# setup-central.sh and hands out the agency's credentials (twice: idempotent), then
# run-with-env.sh runs the merge and agency-loop.sh the agency's syncs until the agency's events
# are merged and its decisions pulled; SIGTERM stops both, each with exit 0.
# What it cannot show: the images build and the containers see each other (docker compose up).
# Needs root and PostgreSQL 15 server binaries; skips (exit 0) without them.
#
#   Deploy/container/test-without-engine.sh [PATH-TO-cardsync]     (default: .build/debug/cardsync)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cardsync=${1:-$repo/.build/debug/cardsync}
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}

skip() { printf 'test-without-engine.sh: skipped: %s\n' "$*"; exit 0; }
fail() { printf 'test-without-engine.sh: FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '\n### %s\n' "$*"; }
[ "$(id -u)" -eq 0 ] || skip "needs root (PostgreSQL runs as the postgres OS user)"
[ -x "$pgbin/initdb" ] || skip "no PostgreSQL server binaries in $pgbin (set PGBIN)"
id -u postgres >/dev/null 2>&1 || skip "no postgres OS user"
[ -x "$cardsync" ] || fail "no cardsync binary at $cardsync"
cardsync=$(realpath "$cardsync")

tmp=$(mktemp -d /tmp/cardsync-container-test.XXXXXX)
chmod 0755 "$tmp"
pgdata=$tmp/pgdata
pids=()
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
cleanup() {
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
    if [ -f "$pgdata/postmaster.pid" ]; then as_postgres "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
# A copy: the build directory's binary may be rebuilt while this runs.
install -D -m 0755 "$cardsync" "$tmp/bin/cardsync"
cardsync=$tmp/bin/cardsync
"$cardsync" --version >/dev/null || fail "$cardsync does not run"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
postgres_uid=$(id -u postgres)

step "init.sh (twice)"
# The image's postgres user is uid 999; this machine's may differ: the files are made for 999
# as in the image, then given to this machine's postgres.
"$here/init.sh" "$tmp/bootstrap"
"$here/init.sh" "$tmp/bootstrap" >/dev/null
chown -R "$postgres_uid" "$tmp/bootstrap/postgres_password" "$tmp/bootstrap/tls/server.key"
[ "$(stat -c %a "$tmp/bootstrap/tls/server.key")" = 600 ] || fail "server.key is not 0600"

step "The db service's cluster on 127.0.0.1:$port"
install -d -o postgres -g postgres -m 0700 "$pgdata"
install -d -o postgres -g postgres -m 0755 "$tmp/sock" "$tmp/log"
as_postgres "$pgbin/initdb" -D "$pgdata" -U postgres --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
# What the postgres image's entrypoint does with /docker-entrypoint-initdb.d/, with the paths of
# the compose file's mounts rewritten to this machine's.
sed "s|/etc/cardsync/postgresql.cardsync.conf|$repo/Deploy/bureau/postgresql.cardsync.conf|" "$here/db-settings.sh" >"$tmp/db-settings.sh"
as_postgres env PGDATA="$pgdata" bash "$tmp/db-settings.sh"
# compose.yaml's `command:` options, in the same order, plus this machine's port and socket.
mapfile -t options < <(python3 - "$here/compose.yaml" "$tmp" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]["db"]["command"][1:]
for flag, value in zip(c[0::2], c[1::2]):
    value = value.replace("/etc/cardsync/pg_hba.conf", sys.argv[2] + "/pg_hba.conf").replace("/bootstrap/", sys.argv[2] + "/bootstrap/")
    print(value)
PY
)
install -o postgres -m 0600 "$here/pg_hba.conf" "$tmp/pg_hba.conf"
opts="-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$tmp/sock -c fsync=off"
for o in "${options[@]}"; do opts+=" -c $o"; done
as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$tmp/log/server.log" -o "$opts" -w start >/dev/null ||
    { cat "$tmp/log/server.log"; fail "the db cluster did not start"; }
# The image sets the superuser's password from POSTGRES_PASSWORD_FILE; here psql's \password
# does not script, so the verifier is made as setup-central.sh makes it, and read by \getenv.
# shellcheck disable=SC2016 # Python, not shell
verifier=$(python3 -c '
import base64, hashlib, hmac, os, sys
pw = open(sys.argv[1], "rb").read().strip(); salt = os.urandom(16)
s = hashlib.pbkdf2_hmac("sha256", pw, salt, 4096)
ck = hmac.new(s, b"Client Key", "sha256").digest()
b = lambda x: base64.b64encode(x).decode()
stored, server = hashlib.sha256(ck).digest(), hmac.new(s, b"Server Key", "sha256").digest()
print(f"SCRAM-SHA-256$4096:{b(salt)}${b(stored)}:{b(server)}")
' "$tmp/bootstrap/postgres_password")
printf '\\getenv v PGV\nALTER ROLE postgres PASSWORD :'"'"'v'"'"';\n' |
    as_postgres env PGV="$verifier" psql -X -q -v ON_ERROR_STOP=1 -h "$tmp/sock" -p "$port" -d postgres -f -
echo "ok"

step "setup.sh (twice)"
setup_env=(BOOTSTRAP_DIR="$tmp/bootstrap" ENV_DIR="$tmp/env" QUEUE_DIR="$tmp/queues/demo"
    DEPLOY_DIR="$repo/Deploy" DB_HOST=localhost DB_PORT="$port" CARDSYNC="$cardsync" APP_UID=0)
env "${setup_env[@]}" "$here/setup.sh" >"$tmp/setup-1.log" 2>&1 || { cat "$tmp/setup-1.log"; fail "setup.sh failed"; }
tail -n 2 "$tmp/setup-1.log"
cp "$tmp/env/agency.env" "$tmp/agency.env.first"
env "${setup_env[@]}" "$here/setup.sh" >"$tmp/setup-2.log" 2>&1 || { cat "$tmp/setup-2.log"; fail "setup.sh failed the second time"; }
cmp -s "$tmp/env/agency.env" "$tmp/agency.env.first" || fail "the second setup.sh rotated the agency's credentials"
for f in "$tmp"/env/*.password "$tmp/bootstrap/postgres_password"; do
    ! grep -qF -- "$(cat "$f")" "$tmp/setup-1.log" "$tmp/setup-2.log" || fail "a password from $f is in setup.sh's output"
done
echo "ok: idempotent, no password in its output"

step "merge (run-with-env.sh) and the agency's loop (agency-loop.sh, every 2 s)"
"$here/run-with-env.sh" "$tmp/env/merge.env" "$cardsync" merge --follow >"$tmp/merge.log" 2>&1 &
pids+=($!); merge_pid=$!
CARDSYNC="$cardsync" "$here/agency-loop.sh" "$tmp/env/agency.env" "$tmp/queues/demo" 2 >"$tmp/agency.log" 2>&1 &
pids+=($!); agency_pid=$!
# Done when every outbox line is in the ledger (as the staff login sees it) or quarantined.
clerk_pgpass=$tmp/clerk.pgpass
printf '*:*:cardsync:cardsync_clerk:%s\n' "$(cat "$tmp/env/clerk.password")" >"$clerk_pgpass"
chmod 600 "$clerk_pgpass"
clerk_url="postgresql://cardsync_clerk@localhost:$port/cardsync?sslmode=verify-full&sslrootcert=$tmp/env/ca.crt"
events=$(grep -c . "$tmp/queues/demo/outbox.jsonl")
merged=0
for _ in $(seq 1 60); do
    merged=$(PGPASSFILE=$clerk_pgpass psql -X -At -d "$clerk_url" -c "SELECT count(*) FROM cardsync.ledger WHERE agency_code IS NOT NULL" 2>/dev/null || echo 0)
    quarantined=0
    [ ! -f "$tmp/queues/demo/quarantine.jsonl" ] || quarantined=$(grep -c . "$tmp/queues/demo/quarantine.jsonl" || true)
    [ "$((merged + quarantined))" -lt "$events" ] || break
    sleep 1
done
[ "$((merged + quarantined))" -ge "$events" ] ||
    { cat "$tmp/agency.log" "$tmp/merge.log"; fail "only $merged of $events outbox events reached the ledger ($quarantined quarantined)"; }
echo "ok: $merged events in the ledger, $quarantined quarantined, of $events outbox lines"
kill -TERM "$merge_pid" "$agency_pid"
for pid in "$merge_pid" "$agency_pid"; do
    code=0; wait "$pid" || code=$?
    [ "$code" -eq 0 ] || { cat "$tmp/agency.log" "$tmp/merge.log"; fail "a service exited $code on SIGTERM"; }
done
pids=()
grep -q "Merged\|No staged batches" "$tmp/merge.log" || { cat "$tmp/merge.log"; fail "no merge summary"; }
! grep -q "exited" "$tmp/agency.log" || { cat "$tmp/agency.log"; fail "a sync failed"; }
echo "ok: both stopped on SIGTERM with exit 0"

printf '\ntest-without-engine.sh: all checks passed\n'
