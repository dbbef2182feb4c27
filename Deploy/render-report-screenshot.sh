#!/bin/sh
# Renders a cardsync HTML report (cardsync report ... --format html --output FILE) to a PNG
# screenshot, and optionally to an A4 PDF, with headless Chromium, to look at it as a reader would.
#
#   Deploy/render-report-screenshot.sh REPORT.html [OUT.png] [WIDTH,HEIGHT] [OUT.pdf]
#
# Needs chromium (apt-get install -y chromium fonts-noto-cjk). Network access is disabled for the
# page, so a report that tried to load anything from outside would show it.
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 REPORT.html [OUT.png] [WIDTH,HEIGHT] [OUT.pdf]" >&2
    exit 2
fi
html=$1
png=${2:-${html%.html}.png}
size=${3:-1240,1754}
pdf=${4:-}

browser=""
for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then browser=$candidate; break; fi
done
if [ -z "$browser" ]; then
    echo "error: chromium is not installed (apt-get install -y chromium fonts-noto-cjk)" >&2
    exit 1
fi
if [ ! -r "$html" ]; then
    echo "error: cannot read $html" >&2
    exit 1
fi

abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT INT TERM

# --no-sandbox: Chromium refuses to run as root otherwise. The proxy settings send any network
# request to a closed port, so the page renders only from its own bytes.
flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=$profile \
  --proxy-server=127.0.0.1:9 --proxy-bypass-list=<-loopback> --no-first-run --disable-extensions"

# shellcheck disable=SC2086
"$browser" $flags --window-size="$size" --screenshot="$png" "file://$abs" >/dev/null 2>&1
echo "wrote $png"
if [ -n "$pdf" ]; then
    # shellcheck disable=SC2086
    "$browser" $flags --no-pdf-header-footer --print-to-pdf="$pdf" "file://$abs" >/dev/null 2>&1
    echo "wrote $pdf"
fi
