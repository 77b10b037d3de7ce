#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang in build-fuzz and runs each for
# the given number of seconds (default 30) on a copy of its seed corpus
# (tests/fuzz/corpus/<name>/ for fuzz_<name>), so that the inputs libFuzzer adds never land in
# the repository. A crash leaves its input in build-fuzz/artifacts/ and makes the script fail.
# Usage: scripts/fuzz.sh [seconds]        (CI runs it; needs clang with libFuzzer)
set -eu

seconds=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
jobs=${FUZZ_BUILD_JOBS:-2}

# The library is compiled with fuzzer-no-link too, so that libFuzzer sees coverage inside the
# parsers and not only in the small target files; OMINIX_SANITIZE adds ASan and UBSan (UB
# aborts) to everything.
CC=clang cmake -S "$root" -B "$build" -DOMINIX_FUZZ=ON -DOMINIX_TESTS=OFF -DOMINIX_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null

status=0
mkdir -p "$build/artifacts"
for src in "$root"/tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    short=${name#fuzz_}
    # Only the fuzz targets: the CLI and other targets are not needed here.
    cmake --build "$build" -j "$jobs" --target "$name"

    work=$(mktemp -d "${TMPDIR:-/tmp}/ominix-$name.XXXXXX")
    if [ -d "$root/tests/fuzz/corpus/$short" ]; then
        cp -R "$root/tests/fuzz/corpus/$short/." "$work/"
    fi
    dict=""
    if [ -f "$root/tests/fuzz/$short.dict" ]; then
        dict="-dict=$root/tests/fuzz/$short.dict"
    fi
    echo "== $name: ${seconds}s"
    # -timeout flags inputs that hang; -rss_limit_mb inputs that make us allocate wildly.
    if ! "$build/$name" $dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" "$work"; then
        echo "== $name FAILED: see $build/artifacts/" >&2
        status=1
    fi
    rm -rf "$work"
done
exit $status
