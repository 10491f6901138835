#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz) with clang in their own build
# directory and runs each one:
#   tools/fuzz.sh [--smoke | --time SECONDS] [TARGET...]
# --smoke: a few seconds each from the seeds only, in a scratch corpus (the
# ctest entry fuzz_smoke). --time N (default 300): N seconds each, the
# corpus kept in $build/corpus/TARGET and grown across runs. Targets:
# perf_map proc_maps proc_status cgroup cfi_table recording elf_plan
# worker_reply (default: all).
# The build directory is $MEMTOP_FUZZ_BUILD, else build-fuzz/. Crashing
# inputs land in $build/crashes/ and the script fails.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_FUZZ_BUILD:-$root/build-fuzz}
mode=long
seconds=300
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) mode=smoke; seconds=4; shift ;;
    --time) seconds=$2; shift 2 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
targets=${*:-perf_map proc_maps proc_status cgroup cfi_table recording elf_plan worker_reply}

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DMEMTOP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

# Seeds: the committed ones (tests/fuzz/seeds) plus real files of this host.
seeds=$build/seeds
rm -rf "$seeds"
mkdir -p "$seeds"
cp -r "$root/tests/fuzz/seeds/." "$seeds/"
mkdir -p "$seeds/proc_maps" "$seeds/proc_status" "$seeds/cgroup" "$seeds/cfi_table" "$seeds/perf_map" "$seeds/recording" \
    "$seeds/elf_plan" "$seeds/worker_reply"
# Every input a fuzzer once failed on is replayed first (TARGET-what).
for f in "$root"/tests/fuzz/regressions/*; do
    name=${f##*/}
    cp "$f" "$seeds/${name%%-*}/$name"
done
for f in maps status cgroup; do
    case $f in maps) d=proc_maps ;; status) d=proc_status ;; *) d=cgroup ;; esac
    cat /proc/self/$f >"$seeds/$d/self"
    cat /proc/1/$f >"$seeds/$d/init" 2>/dev/null || true
done
# Small real ELF files: a shared object and an object file clang makes here
# (known to have .eh_frame), and a .debug_frame-only one, plus the smallest
# shared libraries of the system.
printf 'int f(int x) { return x * 3; }\nint g(int *p) { return f(*p) + 1; }\n' >"$seeds/elf.c"
clang -O2 -shared -fPIC -o "$seeds/cfi_table/small.so" "$seeds/elf.c"
clang -O2 -c -o "$seeds/cfi_table/small.o" "$seeds/elf.c"
clang -O2 -g -fno-asynchronous-unwind-tables -shared -fPIC -nostartfiles -o "$seeds/cfi_table/debug_frame.so" "$seeds/elf.c"
rm "$seeds/elf.c"
find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name '*.so*' -type f -size -24k 2>/dev/null | sort | head -4 |
    while read -r f; do cp "$f" "$seeds/cfi_table/"; done
# Placement and the symbols request: the same files, and a small allocator
# library (a malloc family, operator new, a PT_INTERP of its own).
cp "$seeds"/cfi_table/* "$seeds/elf_plan/"
printf '%s\n' '#include <stddef.h>' 'static char pool[4096]; static size_t used;' \
    'void *malloc(size_t n) { void *p = pool + used; used += (n + 15) & ~15ul; return p; }' \
    'void free(void *p) { (void)p; }' 'void *calloc(size_t a, size_t b) { return malloc(a * b); }' \
    'void *realloc(void *p, size_t n) { (void)p; return malloc(n); }' >"$seeds/alloc.c"
clang -O2 -shared -fPIC -Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2 -o "$seeds/elf_plan/alloc.so" "$seeds/alloc.c"
rm "$seeds/alloc.c"
# The worker's answers (plans of both kinds, symbols) for those files and
# for libc, as it encodes them.
"$build/tests/fuzz/seed_replies" "$seeds/worker_reply" "$seeds"/elf_plan/* /usr/lib/x86_64-linux-gnu/libc.so.6

status=0
for t in $targets; do
    if [ "$mode" = smoke ]; then
        corpus=$build/smoke/$t
        rm -rf "$corpus"
    else
        corpus=$build/corpus/$t
    fi
    mkdir -p "$corpus" "$build/crashes"
    # ELF inputs and recordings need room; text files are small.
    max_len=4096
    case $t in cfi_table | recording | elf_plan | worker_reply) max_len=65536 ;; esac
    log=$build/$t.log
    if "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=20 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" \
        "$corpus" "$seeds/$t" >"$log" 2>&1; then
        # The last status line: executions, coverage (cov), features (ft), corpus.
        line=$(grep -E '^#[0-9]+' "$log" | tail -1)
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz_$t: ${runs:-?} runs in ${seconds}s; $line"
    else
        echo "fuzz_$t: FAILED (log $log):" >&2
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" >&2 || tail -20 "$log" >&2
        status=1
    fi
done
exit $status
