#!/usr/bin/env bash
# Builds cgiq and its tests in Debug mode with AddressSanitizer and
# UndefinedBehaviorSanitizer (into build-test/, so that the Release build in
# build/ used by run.sh and bench.sh is left alone) and runs the whole suite
# with ctest. Exits with ctest's status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DCGIQ_SANITIZE=ON
cmake --build build-test -j2

cd build-test
exec ctest --output-on-failure -j2 --timeout 900
