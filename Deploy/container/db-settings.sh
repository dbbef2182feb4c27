#!/usr/bin/env bash
# /docker-entrypoint-initdb.d/ script of compose.yaml's db service: runs once, when the postgres
# image initialises its data directory, and makes the server read Deploy/bureau's recommended
# settings (mounted at /etc/cardsync/postgresql.cardsync.conf). What a trial machine cannot
# take (4 GB of shared buffers, a WAL archive) compose.yaml overrides with -c options, which win
# over any file.
set -euo pipefail
echo "include '/etc/cardsync/postgresql.cardsync.conf'" >>"$PGDATA/postgresql.conf"
