#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang into build-fuzz/ and
# runs each for SECONDS (default 60) on a fresh copy of its checked-in corpus
# (tests/fuzz/corpus/<target>/). Prints, per target, the executions, the
# coverage reached and the crashes found. A crash input is kept in
# build-fuzz/artifacts/<target>/; add it to tests/fuzz/corpus/<target>/ and it
# becomes a regression test run by every ctest (fuzz_replay_<target>).
# Exits 1 when a target crashed (or leaked, or timed out), 2 on a setup error.
# FUZZ_TARGETS="http_request progress" runs only those. The targets run one
# after another (the CI machine has two cores).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER_TARGET="${1:-60}"
case "$SECONDS_PER_TARGET" in
  ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

CC_FUZZ="${CC_FUZZ:-clang}"
if ! command -v "$CC_FUZZ" >/dev/null 2>&1; then
  echo "fuzz: $CC_FUZZ not found (scripts/setup.sh installs clang)" >&2
  exit 2
fi

BUILD=build-fuzz
CC="$CC_FUZZ" cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCGIQ_FUZZ=ON \
  -DCGIQ_SANITIZE=OFF >"$BUILD.cmake.log" 2>&1 || { cat "$BUILD.cmake.log" >&2; exit 2; }
cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-1}" --target fuzz_all >"$BUILD.build.log" 2>&1 ||
  { cat "$BUILD.build.log" >&2; exit 2; }
rm -f "$BUILD.cmake.log" "$BUILD.build.log"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=0
printf '%-16s %12s %8s %8s %s\n' target executions cov features crashes
for bin in "$BUILD"/fuzz_*; do
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  name="${bin##*/fuzz_}"
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  seeds="tests/fuzz/corpus/$name"
  work="$BUILD/run/$name"
  artifacts="$BUILD/artifacts/$name"
  log="$BUILD/run/$name.log"
  rm -rf "$work"
  mkdir -p "$work" "$artifacts"
  if [ -d "$seeds" ]; then cp "$seeds"/* "$work"/ 2>/dev/null || true; fi
  dict=()
  if [ -f "tests/fuzz/$name.dict" ]; then dict=(-dict="tests/fuzz/$name.dict"); fi
  before=$(find "$artifacts" -type f | wc -l)
  rc=0
  "$bin" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" >"$log" 2>&1 || rc=$?
  after=$(find "$artifacts" -type f | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2 || true)
  crashes=$((after - before))
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  printf '%-16s %12s %8s %8s %s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    echo "fuzz: $name crashed (exit $rc); log: $log; inputs:" >&2
    find "$artifacts" -type f -newer "$seeds" 2>/dev/null | sed 's/^/  /' >&2 || true
    grep -E 'ERROR|invariant failed|SUMMARY' "$log" | head -n 5 | sed 's/^/  /' >&2 || true
  fi
done
exit "$failed"
