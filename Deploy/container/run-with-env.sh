#!/usr/bin/env bash
# run-with-env.sh ENV_FILE COMMAND...: COMMAND with the variables of ENV_FILE in its environment,
# as systemd's EnvironmentFile= gives them to a service (the same files: NAME='value' lines).
# compose.yaml's merge service runs cardsync merge --follow through it; exec, so that SIGTERM
# reaches cardsync itself, which finishes the batch in hand and exits 0.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: run-with-env.sh ENV_FILE COMMAND..." >&2; exit 2; }
env_file=$1; shift
[ -r "$env_file" ] || { echo "run-with-env.sh: cannot read $env_file (has the setup service run?)" >&2; exit 1; }
set -a
# shellcheck disable=SC1090 # the file is the argument
. "$env_file"
set +a
exec "$@"
