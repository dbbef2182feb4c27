#!/usr/bin/env bash
# Installs what cardsync needs beyond the Swift toolchain: libpq (headers and pkg-config file)
# and a PostgreSQL server for the embedded cluster and the tests. Safe to run twice: it
# installs only what is missing. Needs root (or sudo) when something is missing.
set -euo pipefail

packages=(libpq-dev postgresql pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ! command -v swift >/dev/null 2>&1; then
  echo "swift is not on PATH: install the Swift toolchain (6.0 or later) first." >&2
  exit 1
fi

# The metrics tests read every metrics file with a real Prometheus parser (docs/monitoring.md).
python3 -c "import prometheus_client" 2>/dev/null || python3 -m pip install --quiet prometheus_client \
  || echo "could not install prometheus_client (pip install prometheus_client): the metrics tests need it" >&2

if [ ${#missing[@]} -eq 0 ]; then
  echo "cardsync dependencies already installed: ${packages[*]}"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "installing ${missing[*]} needs root: run this script as root" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The Debian package starts a system-wide cluster; cardsync does not use it (it runs its own,
# on a Unix socket in its own directory), so it is left as the package set it up.
