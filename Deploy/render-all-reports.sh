#!/bin/sh
# Renders every report (monthly, backlog, throughput; English and Chinese) to HTML with cardsync,
# then each HTML file to an A4 PDF, one PNG per PDF page (pdftoppm) and a screenshot, with headless
# Chromium (Deploy/render-report-screenshot.sh), so that a person can look at what the bureau
# files. The PDF pages are what a printed report looks like; look at them, not only the screenshot.
#
#   Deploy/render-all-reports.sh OUTDIR [--database URL] [--month YYYY-MM] [--as-of T]
#                                       [--from DATE --to DATE] [--interval day|week|month]
#
# Defaults: the embedded default database (run `cardsync demo` first), the month before the
# current one, the backlog now, throughput over the month given and the one before it, by week.
# CARDSYNC names the binary (default .build/debug/cardsync).
# Needs chromium, fonts-noto-cjk and poppler-utils (apt-get install -y chromium fonts-noto-cjk poppler-utils).
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [--database URL] [--month YYYY-MM] [--as-of T] [--from DATE --to DATE] [--interval I]" >&2
    exit 2
fi
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
cardsync=${CARDSYNC:-$here/../.build/debug/cardsync}
database=""
month=""
asof=""
from=""
to=""
interval=week
while [ $# -gt 0 ]; do
    case $1 in
        --database) database=$2; shift 2 ;;
        --month) month=$2; shift 2 ;;
        --as-of) asof=$2; shift 2 ;;
        --from) from=$2; shift 2 ;;
        --to) to=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        *) echo "error: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ ! -x "$cardsync" ]; then
    echo "error: $cardsync is not built (swift build, or set CARDSYNC)" >&2
    exit 1
fi
for tool in pdftoppm pdfinfo; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is missing (apt-get install -y poppler-utils)" >&2; exit 1; }
done
if [ -z "$month" ]; then
    # The month before the current one: the latest complete month.
    month=$(date -u -d "$(date -u +%Y-%m-01) -1 day" +%Y-%m)
fi
if [ -z "$from" ]; then
    from=$(date -u -d "$month-01 -1 month" +%Y-%m-%d)
    to=$(date -u -d "$month-01 +1 month -1 day" +%Y-%m-%d)
fi
mkdir -p "$out"

set -- # the database option, when given, as positional parameters (a URL may hold spaces)
if [ -n "$database" ]; then set -- --database "$database"; fi

for lang in en zh; do
    "$cardsync" report monthly --month "$month" --format html --lang "$lang" --output "$out/monthly-$lang.html" "$@"
    if [ -n "$asof" ]; then
        "$cardsync" report backlog --as-of "$asof" --format html --lang "$lang" --output "$out/backlog-$lang.html" "$@"
    else
        "$cardsync" report backlog --format html --lang "$lang" --output "$out/backlog-$lang.html" "$@"
    fi
    "$cardsync" report throughput --from "$from" --to "$to" --interval "$interval" --format html --lang "$lang" \
        --output "$out/throughput-$lang.html" "$@"
done

for report in monthly backlog throughput; do
    for lang in en zh; do
        base=$out/$report-$lang
        "$here/render-report-screenshot.sh" "$base.html" "$base.png" 1240,1754 "$base.pdf"
        rm -f "$base"-page-*.png
        # 100 dpi: an A4 landscape page is 1169 x 827 pixels, legible and small.
        pdftoppm -r 100 -png "$base.pdf" "$base-page"
        pages=$(pdfinfo "$base.pdf" | sed -n 's/^Pages: *//p')
        echo "$base.pdf: $pages page(s), $base-page-*.png"
    done
done
