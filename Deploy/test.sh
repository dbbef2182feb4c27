#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL clusters that the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
Deploy/install-dependencies.sh --tests
swift build --build-tests
swift test --skip-build
# The queue reader and validator under libFuzzer for a minute (by hand, longer: Fuzz/run.sh 3600).
Fuzz/run.sh 60
# Deployment: shellcheck, the systemd units, the container recipe; then the bureau's and the
# agencies' scripts for real on throwaway clusters (as root; they skip otherwise).
Deploy/lint.sh
Deploy/bureau/test-deployment.sh .build/debug/cardsync
Deploy/container/test-without-engine.sh .build/debug/cardsync
