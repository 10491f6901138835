#!/bin/sh
# Builds memtop's code and its unit tests with AddressSanitizer and
# UndefinedBehaviorSanitizer in $MEMTOP_ASAN_BUILD (default build-asan/) and
# runs the unit tests there: any heap error, leak or undefined behaviour
# fails them (tools/test runs this after the suite).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_ASAN_BUILD:-$root/build-asan}
tests="unit_core unit_procinfo unit_symbolize unit_tui unit_aggregate"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMTOP_SANITIZE=ON >/dev/null
# shellcheck disable=SC2086
# g++ warns falsely (-Wmaybe-uninitialized) in Catch2 under ASan: the
# build's output goes to a log, shown if it fails.
if ! cmake --build "$build" -j"$(nproc)" --target $tests >"$build/build.log" 2>&1; then
    grep -m20 error "$build/build.log" >&2
    exit 1
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in $tests; do
    exe=$(find "$build/tests/unit" -name "$t" -type f | head -1)
    if "$exe" >"$build/$t.log" 2>&1; then
        echo "$t (ASan+UBSan): $(grep -E 'All tests passed|test cases' "$build/$t.log" | tail -1)"
    else
        echo "$t (ASan+UBSan): FAILED, log $build/$t.log" >&2
        grep -E 'ERROR: |runtime error|SUMMARY|FAILED' "$build/$t.log" | head -20 >&2
        status=1
    fi
done
exit $status
