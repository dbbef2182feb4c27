#!/usr/bin/env bash
# Shows cardsync's main job end to end on the embedded default: a generated city of agencies
# syncs with a private PostgreSQL cluster, the bureau decides, counters hand out cards, and the
# monthly report is printed. Needs nothing but the Swift toolchain and apt. Its last lines say
# what to type next (an alias for this build's cardsync, export CARDSYNC_DATABASE_URL=demo).
set -euo pipefail
cd "$(dirname "$0")/.."
Deploy/install-dependencies.sh
swift build -c release --product cardsync
exec .build/release/cardsync demo "$@"
