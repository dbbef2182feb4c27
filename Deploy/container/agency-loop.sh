#!/usr/bin/env bash
# agency-loop.sh ENV_FILE QUEUE_DIR [INTERVAL_SECONDS]: what cardsync-sync@.timer does on an
# agency's machine, as one container's loop: cardsync sync QUEUE_DIR every INTERVAL seconds
# (default 300) after each run ends, with the agency's environment file read again before each
# run (a rotated password is picked up without a restart). A failed run is logged and retried at
# the next tick, as the timer would. SIGTERM stops it between runs, or after the run in hand.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: agency-loop.sh ENV_FILE QUEUE_DIR [INTERVAL_SECONDS]" >&2; exit 2; }
env_file=$1 queue=$2 interval=${3:-300}
stop=false
trap 'stop=true; [ -z "${sleeper:-}" ] || kill "$sleeper" 2>/dev/null || true' TERM INT
while ! $stop; do
    status=0
    (
        set -a
        # shellcheck disable=SC1090 # the file is the argument
        . "$env_file"
        set +a
        exec "${CARDSYNC:-cardsync}" sync "$queue" --retry 3 --wait 60
    ) || status=$?
    [ "$status" -eq 0 ] || echo "agency-loop.sh: cardsync sync exited $status; next try in ${interval}s" >&2
    $stop && break
    # In the background and waited for, so that SIGTERM ends the pause at once.
    sleep "$interval" & sleeper=$!
    wait "$sleeper" || true
    sleeper=""
done
