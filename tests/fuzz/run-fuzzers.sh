#!/bin/sh
# Runs every libFuzzer target for a bounded time (CI: 20 s each by default).
#
#   tests/fuzz/run-fuzzers.sh [SECONDS] [BUILDDIR]
#
# Builds BUILDDIR (default build-fuzz) with clang and -Dfuzzing=true when
# missing. Skips (exit 0, with a message) when clang or libFuzzer is absent.
# New inputs go to a scratch directory; the committed corpus is only read.
# A crash fails the script and leaves crash-* files in the scratch directory.
set -eu
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-20}
BUILDDIR=${2:-build-fuzz}
TARGETS="ws ws-deflate router json json-scan sse-id jwt jwks config proxy"

if ! command -v clang >/dev/null 2>&1; then
  echo "run-fuzzers: clang not found, fuzzing skipped"
  exit 0
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' |
     clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
  echo "run-fuzzers: clang has no libFuzzer (libclang-rt-dev), fuzzing skipped"
  exit 0
fi
[ -d "$BUILDDIR" ] || CC=clang meson setup "$BUILDDIR" -Dfuzzing=true
# Only the fuzz targets (and libherald): CI time matters.
meson compile -C "$BUILDDIR" $(for t in $TARGETS; do printf 'fuzz-%s ' "$t"; done)

work=$(mktemp -d "${TMPDIR:-/tmp}/herald-fuzz.XXXXXX")
status=0
for t in $TARGETS; do
  mkdir -p "$work/$t"
  echo "run-fuzzers: $t for ${SECONDS_EACH}s"
  # GLib warnings are not failures; criticals are (fatal-criticals aborts).
  if ! (cd "$work/$t" && G_DEBUG=fatal-criticals \
        ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1 \
        UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
        "$OLDPWD/$BUILDDIR/tests/fuzz/fuzz-$t" -max_total_time="$SECONDS_EACH" \
          -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
          "$work/$t" "$OLDPWD/tests/fuzz/corpus/$t" > "$work/$t.log" 2>&1); then
    echo "run-fuzzers: $t FAILED, see $work/$t.log and $work/$t/crash-*"
    tail -n 60 "$work/$t.log"
    status=1
  else
    grep -E "^#[0-9]+.*(DONE|cov:)" "$work/$t.log" | tail -n 1
  fi
done
[ $status -eq 0 ] && rm -rf "$work"
exit $status
