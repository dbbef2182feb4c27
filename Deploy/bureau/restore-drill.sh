#!/usr/bin/env bash
# The bureau's restore drill (docs/deploy.md, "Restore drill"), on a throwaway PostgreSQL
# cluster this script starts (Unix socket only) and removes when it ends:
#   1. generated agencies sync (the first half of each outbox), the bureau imports the first half
#      of its decisions, the agencies pull them;
#   2. pg_dump -Fc of the central database (timed);
#   3. work goes on: the rest of the outboxes (more duplicate applications: conflicts), the rest
#      of the decisions, pulled into the inboxes;
#   4. the old dump is restored: DROP DATABASE, CREATE DATABASE, pg_restore (timed);
#   5. every agency runs `cardsync reconcile DIR --repair` and syncs; the bureau imports the
#      decisions made after the dump again (the same file: the same event_ids), agencies sync;
#   6. checks that nothing was lost or doubled: every valid outbox event once in the ledger,
#      every decision once, `db verify` clean, each inbox equal to the centre's deliveries with
#      no decision twice, no line quarantined twice, `reconcile` consistent, and importing both
#      decision files again records nothing.
# Exit 0 when every check holds, 1 otherwise. Skips (exit 0) without PostgreSQL server binaries.
# Prints the dump and restore times.
#
#   Deploy/bureau/restore-drill.sh [PATH-TO-cardsync] [--agencies N] [--applications M] [--jobs J]
#       default: .build/debug/cardsync, 6 agencies, 2000 applications (about 4,500 events), 2 jobs
#   KEEP=1 keeps the temporary directory; PGBIN names the PostgreSQL binaries' directory.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cardsync=$repo/.build/debug/cardsync
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then cardsync=$1; shift; fi
agencies=6 applications=2000 jobs=2
while [ $# -gt 0 ]; do
    case $1 in
        --agencies) agencies=$2; shift 2 ;;
        --applications) applications=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) printf 'restore-drill.sh: unknown option %s (see --help)\n' "$1" >&2; exit 64 ;;
    esac
done
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}

skip() { printf 'restore-drill.sh: skipped: %s\n' "$*"; exit 0; }
fail() { printf 'restore-drill.sh: FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '\n### %s\n' "$*"; }
[ -x "$pgbin/initdb" ] || skip "no PostgreSQL server binaries in $pgbin (set PGBIN)"
command -v jq >/dev/null || fail "jq is needed to read cardsync's JSON output"
[ -x "$cardsync" ] || fail "no cardsync binary at $cardsync (swift build --product cardsync)"

tmp=$(mktemp -d /tmp/cardsync-restore-drill.XXXXXX)
# The server runs as postgres when this runs as root, and must pass through to its directories.
chmod 0755 "$tmp"
pgdata=$tmp/pgdata sock=$tmp/sock
as_server() {
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
cleanup() {
    if [ -f "$pgdata/postmaster.pid" ]; then as_server "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
# A copy: the build directory's binary may be rebuilt while this runs.
install -D -m 0755 "$cardsync" "$tmp/bin/cardsync"
cardsync=$tmp/bin/cardsync
"$cardsync" --version >/dev/null || fail "$cardsync does not run"
# Nothing of the caller's: every command names the drill's database.
unset CARDSYNC_DATABASE_URL
export CARDSYNC_HOME=$tmp/home

step "Throwaway cluster (socket $sock)"
if [ "$(id -u)" -eq 0 ]; then
    id -u postgres >/dev/null 2>&1 || skip "running as root needs a postgres OS user for the server"
    install -d -o postgres -g postgres -m 0700 "$pgdata"
    install -d -o postgres -g postgres -m 0755 "$sock" "$tmp/log"
else
    install -d -m 0700 "$pgdata"
    install -d -m 0755 "$sock" "$tmp/log"
fi
# trust on the socket only: its directory is this script's, and there is no TCP.
as_server "$pgbin/initdb" -D "$pgdata" -U postgres --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$tmp/log/initdb.log" 2>&1 \
    || { cat "$tmp/log/initdb.log"; fail "initdb failed"; }
# Socket only; a large sync writes much WAL, so fewer checkpoints (as postgresql.cardsync.conf).
as_server "$pgbin/pg_ctl" -D "$pgdata" -l "$tmp/log/server.log" -w \
    -o "-k $sock -c listen_addresses= -c port=5432 -c max_wal_size=4GB" start >/dev/null \
    || { cat "$tmp/log/server.log"; fail "the cluster did not start"; }
db="host=$sock port=5432 user=postgres dbname=cardsync"
psql_admin() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p 5432 -U postgres -d postgres "$@"; }
psql_db() { "$pgbin/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
fresh_database() {
    psql_admin -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS cardsync WITH (FORCE)" -c "CREATE DATABASE cardsync ENCODING 'UTF8'"
}
fresh_database
"$cardsync" db migrate --database "$db" >/dev/null
now() { printf '%s' "$EPOCHREALTIME"; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

step "Generate $agencies agencies, $applications applications"
"$cardsync" generate "$tmp/gen" --agencies "$agencies" --applications "$applications" --faults 0.01 --seed 7 --json >"$tmp/generated.json"
valid=$(jq .outbox_events "$tmp/generated.json")
faulty=$(jq .injected_faults "$tmp/generated.json")
queues=()
for dir in "$tmp"/gen/queues/CS-*; do queues+=("$dir"); done
# Each file cut at its middle line: the first half is what existed at the dump.
split_half() { # FILE EARLY LATE
    local n
    n=$(wc -l <"$1")
    head -n $((n / 2)) "$1" >"$2"
    tail -n +$((n / 2 + 1)) "$1" >"$3"
}
for q in "${queues[@]}"; do
    split_half "$q/outbox.jsonl" "$q.early" "$q.late"
    cp "$q.early" "$q/outbox.jsonl"
done
split_half "$tmp/gen/bureau-decisions.jsonl" "$tmp/decisions-before-dump.jsonl" "$tmp/decisions-after-dump.jsonl"
decisions=$(wc -l <"$tmp/gen/bureau-decisions.jsonl")
printf '%s valid outbox events, %s faulty lines, %s bureau decisions\n' "$valid" "$faulty" "$decisions"

sync_all() { "$cardsync" sync "${queues[@]}" --jobs "$jobs" --database "$db" --json >"$tmp/sync.json" || fail "sync: $(cat "$tmp/sync.json")"; }
import_decisions() { "$cardsync" bureau import "$1" --json --database "$db" >"$tmp/import.json" || fail "bureau import $1"; }

step "Before the dump: sync, decisions, pull"
t0=$(now); sync_all; t1=$(now)
printf 'first sync: %s s\n' "$(seconds "$t0" "$t1")"
import_decisions "$tmp/decisions-before-dump.jsonl"
sync_all

step "pg_dump -Fc"
t0=$(now)
"$pgbin/pg_dump" -Fc -f "$tmp/cardsync.dump" -d "$db"
t1=$(now)
dumped_events=$(psql_db -c "SELECT count(*) FROM cardsync.ledger")
dump_seconds=$(seconds "$t0" "$t1")
printf 'dump of %s ledger rows: %s s, %s bytes\n' "$dumped_events" "$dump_seconds" "$(stat -c %s "$tmp/cardsync.dump")"

step "After the dump: more events, decisions, conflicts"
for q in "${queues[@]}"; do cat "$q.late" >>"$q/outbox.jsonl"; done
sync_all
import_decisions "$tmp/decisions-after-dump.jsonl"
sync_all
conflicts_before=$(psql_db -c "SELECT count(*) FROM cardsync.conflicts")
printf '%s ledger rows, %s conflicts\n' "$(psql_db -c "SELECT count(*) FROM cardsync.ledger")" "$conflicts_before"

step "Restore the old dump: drop, create, pg_restore"
t0=$(now)
fresh_database
"$pgbin/pg_restore" --exit-on-error -d "$db" "$tmp/cardsync.dump"
t1=$(now)
restore_seconds=$(seconds "$t0" "$t1")
printf 'restore: %s s; the centre holds %s ledger rows again\n' "$restore_seconds" "$(psql_db -c "SELECT count(*) FROM cardsync.ledger")"

step "Every agency: reconcile --repair, then sync"
t0=$(now)
"$cardsync" reconcile "${queues[@]}" --repair --json --database "$db" >"$tmp/repair.json" \
    || fail "reconcile --repair: $(jq -c .errors "$tmp/repair.json" 2>/dev/null)"
t1=$(now)
jq -r '.agencies[] | "\(.agency_code): pushed \(.repaired.pushed), pulled \(.repaired.pulled), decisions unknown centrally \(.found.decisions_unknown_centrally)"' "$tmp/repair.json"
printf 'reconcile --repair: %s s\n' "$(seconds "$t0" "$t1")"
[ "$(jq '[.agencies[].found.decisions_unknown_centrally] | add' "$tmp/repair.json")" -gt 0 ] \
    || fail "no inbox held decisions the restore took away: the drill did not test the re-import"
sync_all

step "The bureau imports the decisions made after the dump again"
import_decisions "$tmp/decisions-after-dump.jsonl"
jq -c '{recorded, already_present, pending}' "$tmp/import.json"
sync_all

step "Checks"
problems=0
check() { if [ "$2" = "$3" ]; then printf 'ok    %s (%s)\n' "$1" "$2"; else printf 'FAIL  %s: %s, expected %s\n' "$1" "$2" "$3"; problems=$((problems + 1)); fi; }
check "agency events in the ledger" "$(psql_db -c "SELECT count(*) FROM cardsync.ledger WHERE origin = 'agency'")" "$valid"
check "distinct agency event ids" "$(psql_db -c "SELECT count(DISTINCT event_id) FROM cardsync.ledger WHERE origin = 'agency'")" "$valid"
check "bureau decisions in the ledger" "$(psql_db -c "SELECT count(*) FROM cardsync.ledger WHERE origin = 'bureau'")" "$decisions"
check "distinct bureau event ids" "$(psql_db -c "SELECT count(DISTINCT event_id) FROM cardsync.ledger WHERE origin = 'bureau'")" "$decisions"
check "db verify" "$("$cardsync" db verify --database "$db" >/dev/null 2>&1; echo $?)" 0
quarantined=0
for q in "${queues[@]}"; do
    code=$(basename "$q")
    jq -r .event_id "$q/inbox.jsonl" | sort >"$tmp/inbox.ids"
    # psql substitutes :'code' (quoted) only in what it reads, not in -c.
    psql_db -v code="$code" <<<"SELECT l.event_id FROM cardsync.deliveries d JOIN cardsync.ledger l USING (ledger_id) WHERE d.agency_code = :'code'" \
        | sort >"$tmp/delivered.ids"
    check "$code: deliveries missing from the inbox" "$(sort -u "$tmp/inbox.ids" | comm -13 - "$tmp/delivered.ids" | wc -l)" 0
    sort -u "$tmp/inbox.ids" | comm -23 - "$tmp/delivered.ids" >"$tmp/extra.ids"
    # Re-pushed events open their conflicts again under the notification ids the inbox holds.
    check "$code: inbox lines the centre does not deliver" "$(wc -l <"$tmp/extra.ids")" 0
    # The inbox is guarded after the restore: re-imported decisions are not appended again.
    check "$code: decisions twice in the inbox" "$(uniq -d "$tmp/inbox.ids" | wc -l)" 0
    if [ -f "$q/quarantine.jsonl" ]; then
        check "$code: lines quarantined twice" "$(jq .line "$q/quarantine.jsonl" | sort | uniq -d | wc -l)" 0
        quarantined=$((quarantined + $(wc -l <"$q/quarantine.jsonl")))
    fi
done
check "lines quarantined" "$quarantined" "$faulty"
"$cardsync" reconcile "${queues[@]}" --json --database "$db" >"$tmp/reconcile.json" || true
check "reconcile: events missing centrally" "$(jq '[.agencies[].found.events_missing_centrally] | add' "$tmp/reconcile.json")" 0
check "reconcile: decisions missing at agencies" "$(jq '[.agencies[].found.decisions_missing_at_agency] | add' "$tmp/reconcile.json")" 0
check "reconcile consistent" "$(jq .consistent "$tmp/reconcile.json")" true
for f in before after; do
    import_decisions "$tmp/decisions-$f-dump.jsonl"
    check "importing the decisions from $f the dump again records" "$(jq .recorded "$tmp/import.json")" 0
done

printf '\nFigures: %s valid events (%s ledger rows at the dump); pg_dump -Fc %s s; drop + create + pg_restore %s s\n' \
    "$valid" "$dumped_events" "$dump_seconds" "$restore_seconds"
[ "$problems" -eq 0 ] || fail "$problems check(s) failed"
printf 'restore-drill.sh: passed\n'
