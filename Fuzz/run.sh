#!/usr/bin/env bash
# Builds the libFuzzer target for the outbox reader and validator, then fuzzes it.
#
#   Fuzz/run.sh [seconds] [libFuzzer options...]    seconds defaults to 60 (the CI budget)
#
# New corpus entries go to .build-fuzz-target/corpus (kept between runs, never the committed
# Fuzz/Corpus). Exits nonzero on a crash, a property violation, a hang or an OOM, and says
# where the input that caused it is.
#
# Built with swiftc, not SwiftPM: SwiftPM (tools version 5.5+) links executables with a
# renamed entry point, which breaks -parse-as-library fuzz targets on Linux (SwiftPM #4522,
# #8731). CardCore becomes a module of its own (the validator imports it); the Sync/Queue files
# below and the property in Tests/UnitTests/Sync/FuzzRegressionTests.swift go into the fuzz
# binary itself, so nothing of CardSync's PostgreSQL side or of swift-log is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if [ $# -gt 0 ]; then shift; fi
case "$seconds" in
  '' | *[!0-9]* | 0) echo "usage: Fuzz/run.sh [seconds > 0] [libFuzzer options...]" >&2; exit 2 ;;
esac

swiftc="${SWIFTC:-swiftc}"
command -v "$swiftc" >/dev/null 2>&1 || { echo "swiftc is not on PATH (or set SWIFTC)" >&2; exit 1; }

out=.build-fuzz-target
bin="$out/queue-fuzz"
mkdir -p "$out/module" "$out/corpus" "$out/artifacts"

# What the reader, the validator and the quarantine entry need from Sync/Queue. A new
# dependency of these files fails the build here, loudly.
queue_sources=(
  Sync/Queue/EventLineValidator.swift Sync/Queue/OutboxReader.swift Sync/Queue/QueueFile.swift
  Sync/Queue/QueueError.swift Sync/Queue/QuarantineWriter.swift Sync/Queue/LineAppender.swift
)
# -O as in production, with bounds and overflow checks kept; ASan for the parser's raw pointers.
flags=(-swift-version 6 -O -g "-sanitize=fuzzer,address" -parse-as-library)
# The toolchain's lld, when it has one: gold prints hundreds of harmless warnings about ASan symbols.
if [ -x "$(dirname "$(command -v "$swiftc")")/ld.lld" ]; then flags+=(-use-ld=lld); fi

echo "building $bin"
build_start=$SECONDS
# -package-name as SwiftPM passes it: CardCore has `package` declarations for the other modules.
"$swiftc" "${flags[@]}" -package-name cardsync -wmo -module-name CardCore -emit-module -emit-module-path "$out/module/CardCore.swiftmodule" \
  -c -o "$out/CardCore.o" Sources/CardCore/*.swift
"$swiftc" "${flags[@]}" -package-name cardsync -module-name QueueFuzz -D CARDSYNC_FUZZ -I "$out/module" -o "$bin" \
  Fuzz/QueueFuzzTarget.swift Tests/UnitTests/Sync/FuzzRegressionTests.swift "${queue_sources[@]}" "$out/CardCore.o"
echo "built in $((SECONDS - build_start)) s"

scratch_tmp="$(mktemp -d "${TMPDIR:-/tmp}/cardsync-fuzz.XXXXXX")"
trap 'rm -rf "$scratch_tmp"' EXIT
marker="$scratch_tmp/started"
touch "$marker"

status=0
# The first corpus directory receives new entries; the others are only read (recursively).
# Inputs up to 64 KiB: many lines, and lines far longer than the small chunks the property
# reads with (the 1 MiB limit is checked once at startup). -timeout: 10 s for one input is a hang.
# Swift's own crash backtracer is off: libFuzzer and ASan report the crash, and the backtracer's
# memory reads set off ASan as a second, confusing error.
TMPDIR="$scratch_tmp" SWIFT_BACKTRACE=enable=no "$bin" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -dict=Fuzz/queue.dict -artifact_prefix="$out/artifacts/" -print_final_stats=1 \
  "$@" "$out/corpus" Fuzz/Corpus || status=$?

if [ "$status" -ne 0 ]; then
  found=0
  while IFS= read -r artifact; do
    found=1
    echo "FUZZ FAILURE: the input is $artifact" >&2
    echo "  reproduce:  $bin $artifact" >&2
    echo "  keep it as a regression test: cp $artifact Fuzz/Corpus/regressions/<what-it-breaks>" >&2
  done < <(find "$out/artifacts" -type f -newer "$marker")
  [ "$found" -eq 1 ] || echo "FUZZ FAILURE: libFuzzer exited with status $status and left no input (see its output above)" >&2
  exit "$status"
fi
echo "fuzzing passed: $seconds s, no crash"
