#!/usr/bin/env bash
# Builds cgiq and its tests in Debug mode with AddressSanitizer and
# UndefinedBehaviorSanitizer (into build-test/, so that the Release build in
# build/ used by run.sh and bench.sh is left alone) and runs the whole suite
# with ctest, checks that the Release build (build/) compiles without a
# warning, then runs scripts/fuzz.sh 20 (each fuzz target for 20 s).
# Exits non-zero when a test failed or a fuzz target crashed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DCGIQ_SANITIZE=ON
cmake --build build-test -j2

status=0
(cd build-test && ctest --output-on-failure -j2 --timeout 900) || status=$?

# The Release build of run.sh and bench.sh (-O3 finds warnings -O0 does not).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 || { echo "test.sh: the Release build failed" >&2; status=1; }

# Each libFuzzer target for a short while (clang comes from setup.sh); a
# crash fails the run. Its input is in build-fuzz/artifacts/.
if command -v clang >/dev/null 2>&1; then
  ./scripts/fuzz.sh "${CGIQ_FUZZ_SECONDS:-20}" || status=1
else
  echo "test.sh: clang not found, fuzzing skipped" >&2
fi
exit "$status"
