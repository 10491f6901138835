#!/bin/sh
# Builds memtop's code with AddressSanitizer and UndefinedBehaviorSanitizer
# (-fno-sanitize-recover=undefined: undefined behaviour ends the process) in
# $MEMTOP_ASAN_BUILD (default build-asan/, -O1 -g1) and runs tests there: any
# heap error, leak or undefined behaviour fails them. The sanitizer build's
# workers run under their seccomp filter plus what the sanitizer runtime
# needs (user/symbolize/sandbox.cpp, MEMTOP_SANITIZER_BUILD).
#
# Usage: tools/sanitize.sh [--build | --run]
#   (no option)  build, then run: every unit test program; then, as root,
#                the runtime tests below with the sanitized memtop
#   --build      only build (memtop and the five unit test programs)
#   --run        only run what --build built
# CI (.ci/run) builds in the background, niced, while the suite runs (most
# of the suite's time is spent waiting on traced programs), and runs after
# it; tools/test, the README's command, does not run this.
#
# The runtime tests (root) take the harness and test programs from the
# normal build, $MEMTOP_BUILD (default build/, built by tools/build.sh if
# missing: they must stay uninstrumented, their allocations are counted),
# and the sanitized memtop through MEMTOP_BIN: the hostile-input tests
# (privilege separation, corrupt ELF, hostile perf maps, recordings but the
# browser's, the unwind-table worker) and a few plain heap ones. Under
# CI=true a runtime test that cannot run fails (as in the suite).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_ASAN_BUILD:-$root/build-asan}
build_step=1 run_step=1
case ${1:-} in
    --build) run_step=0 ;;
    --run) build_step=0 ;;
    "") ;;
    *) echo "sanitize.sh: unknown option $1 (usage: tools/sanitize.sh [--build | --run])" >&2; exit 2 ;;
esac
tests="unit_core unit_procinfo unit_symbolize unit_tui unit_aggregate"
targets="$tests memtop"
runtime_filter='[privsep],[corrupt],[hostile],[record]~[html],c_sites_fp under memtop -- CMD*,cpp_sites_nofp under memtop -- CMD*,deep_sites under memtop -- CMD*'

if [ $build_step = 1 ]; then
    mkdir -p "$build"
    t0=$(date +%s)
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMTOP_SANITIZE=ON >"$build/configure.log" 2>&1 ||
        { cat "$build/configure.log" >&2; exit 1; }
    # g++ warns falsely (-Wmaybe-uninitialized) in Catch2 under ASan: the
    # build's output goes to a log, shown if it fails.
    # shellcheck disable=SC2086
    if ! cmake --build "$build" -j"$(nproc)" --target $targets >"$build/build.log" 2>&1; then
        grep -m20 error "$build/build.log" >&2
        exit 1
    fi
    echo "sanitizer build ($targets): $(($(date +%s) - t0)) s"
fi
[ $run_step = 1 ] || exit 0
[ -x "$build/user/memtop" ] || { echo "sanitize.sh: $build/user/memtop not built (tools/sanitize.sh --build)" >&2; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in $tests; do
    t1=$(date +%s)
    exe=$(find "$build/tests/unit" -name "$t" -type f | head -1)
    if "$exe" >"$build/$t.log" 2>&1; then
        echo "$t (ASan+UBSan): $(grep -E 'All tests passed|test cases' "$build/$t.log" | tail -1), $(($(date +%s) - t1)) s"
    else
        echo "$t (ASan+UBSan): FAILED, log $build/$t.log" >&2
        grep -E 'ERROR: |runtime error|SUMMARY|FAILED' "$build/$t.log" | head -20 >&2
        status=1
    fi
done

if [ "$(id -u)" = 0 ]; then
    normal=${MEMTOP_BUILD:-$root/build}
    [ -x "$normal/tests/runtime/runtime_tests" ] || MEMTOP_BUILD=$normal "$root/tools/build.sh"
    t1=$(date +%s)
    # CI=true: a test that cannot run (no BPF, no uprobes) fails rather than
    # being skipped with a warning.
    if CI=true MEMTOP_BIN="$build/user/memtop" "$normal/tests/runtime/runtime_tests" "$runtime_filter" \
        >"$build/runtime_tests.log" 2>&1; then
        echo "runtime_tests, sanitized memtop: $(grep -E 'All tests passed|test cases' "$build/runtime_tests.log" | tail -1), $(($(date +%s) - t1)) s"
    else
        echo "runtime_tests, sanitized memtop: FAILED, log $build/runtime_tests.log" >&2
        grep -E 'ERROR: |runtime error|SUMMARY|FAILED|with expansion' "$build/runtime_tests.log" | head -20 >&2
        status=1
    fi
fi
exit $status
