#!/usr/bin/env bash
# The test command: installs what the build needs, fetches the default model, builds with
# AddressSanitizer and UndefinedBehaviorSanitizer, runs the whole ctest suite, then runs each
# fuzz target briefly.
# Usage: scripts/test.sh [fuzz-seconds]   (default 20; 0 skips fuzzing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fuzz_seconds=${1:-20}
jobs=$(nproc)

scripts/install-deps.sh
# The end-to-end test runs the real default model; fetch it (once) and insist on it.
scripts/fetch-default-model.sh >/dev/null
export OMINIX_REQUIRE_DEFAULT_MODEL=1
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DOMINIX_SANITIZE=ON >/dev/null
cmake --build build-sanitize -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-sanitize && ctest --output-on-failure -j "$jobs")
if [ "$fuzz_seconds" -gt 0 ]; then
    scripts/fuzz.sh "$fuzz_seconds"
fi
