#!/usr/bin/env bash
# Installs what cardsync needs beyond the Swift toolchain: libpq (headers and pkg-config file)
# and a PostgreSQL server for the embedded cluster. With --tests also what the tests need:
# Chromium with CJK fonts and poppler, which the A4 report checks (Tests/CardReportsTests/
# RenderA4Tests) and Deploy/render-all-reports.sh use to lay reports out, print them to PDF and
# read the PDF back, and Python's prometheus_client for the metrics tests. Safe to run twice: it
# installs only what is missing. Needs root (or sudo) when something is missing.
#
#   Deploy/install-dependencies.sh [--tests]
set -euo pipefail

packages=(libpq-dev postgresql pkg-config)
tests=false
case "${1:-}" in
  --tests) tests=true; packages+=(chromium fonts-noto-cjk poppler-utils) ;;
  "") ;;
  *) echo "usage: $0 [--tests]" >&2; exit 64 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ! command -v swift >/dev/null 2>&1; then
  echo "swift is not on PATH: install the Swift toolchain (6.0 or later) first." >&2
  exit 1
fi

# The metrics tests read every metrics file with a real Prometheus parser (docs/monitoring.md).
if $tests; then
  python3 -c "import prometheus_client" 2>/dev/null || python3 -m pip install --quiet prometheus_client \
    || echo "could not install prometheus_client (pip install prometheus_client): the metrics tests need it" >&2
fi

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
# Chromium with its recommended packages (fonts, mesa): headless printing is only tested that way.
browser=() others=()
for p in "${missing[@]}"; do
  if [ "$p" = chromium ]; then browser+=("$p"); else others+=("$p"); fi
done
if [ ${#others[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${others[@]}"
fi
if [ ${#browser[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${browser[@]}"
fi
# The Debian package starts a system-wide cluster; cardsync does not use it (it runs its own,
# on a Unix socket in its own directory), so it is left as the package set it up.
