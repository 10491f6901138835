#!/bin/bash
# memtop's cost on allocation-heavy Python (tests/progs/python/bench_alloc.py),
# against untraced runs measured in the same run (ratios are the result):
#   untraced     python3.11 WORK
#   tracemalloc  the same with tracemalloc started in the process
#   default      memtop -b --python-objects -- python3.11 WORK: Python's
#                objects sampled in-process every 64 KiB (the Python-only
#                sampler), the native heap exact in the probes
#   exact        memtop -b --python-objects --exact -- python3.11 WORK
#   probes       memtop -b --python-objects --sample 524288 --kernel-sampling
#                -- python3.11 WORK: the native heap sampled in its probes,
#                Python's objects sampled at pymalloc's sites (in BPF)
#   in-process   memtop -b --python-objects --sample 524288 -- python3.11 WORK:
#                the preloaded sampler samples the heap and Python's objects
#   -p           memtop -b --python-objects -p PID, attached to the workload
#                parked before its loop (bench_alloc.py --wait): Python's
#                objects sampled every 64 KiB at pymalloc's sites, in BPF
#                (no preload possible), the native heap exact
#   -p exact     the same with --exact: every object counted at the sites
# Each workload times its own loop ("elapsed S"), so memtop's start-up is
# not counted. Exact, memtop takes one trap per Python object allocated or
# freed at pymalloc's inlined sites (docs/design.md, "Python's object
# allocator"); in-process, only the sampled ones reach it. `example` is
# tracemalloc's classic (100,000 ints appended to a list, run three times).
# Run as root: sudo tools/bench-python.sh [WORKLOAD...]. memtop's runs take
# /tmp/memtop-bpf-tests.lock; under `flock /tmp/memtop-bpf-tests.lock env
# BENCH_LOCKED=1 tools/bench-python.sh` every run is made holding it (the
# untraced ones too, on a machine the lock keeps quiet).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
memtop=$build/user/memtop
py=/usr/bin/python3.11
script=$root/tests/progs/python/bench_alloc.py
[ -x "$memtop" ] || { echo "bench-python: build first (tools/build.sh)" >&2; exit 1; }
[ -x "$py" ] || { echo "bench-python: needs $py (Debian's python3.11)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-python: run as root" >&2; exit 1; }
lock=(flock /tmp/memtop-bpf-tests.lock)
[ -z "${BENCH_LOCKED:-}" ] || lock=()
works=("$@")
[ ${#works[@]} -gt 0 ] || works=(example ints dicts objects bytes)

# elapsed CMD...: the workload's own seconds, or "fail".
elapsed() {
    local out
    out=$("$@" 2>&1) || { echo fail; echo "$out" | tail -3 >&2; return; }
    echo "$out" | sed -n 's/^elapsed //p' | tail -1
}
# attached MEMTOP_ARGS...: the workload started parked (--wait), memtop -p
# attached to it, then the loop run; its seconds, or "fail". memtop ends
# with its target.
attached() {
    local dir pypid mtpid i ok=
    dir=$(mktemp -d)
    mkfifo "$dir/in"
    "$py" "$script" "$w" --wait <"$dir/in" >"$dir/out" 2>&1 &
    pypid=$!
    exec 9>"$dir/in"
    for ((i = 0; i < 600; i++)); do grep -q '^ready' "$dir/out" && break; sleep 0.1; done
    "${lock[@]}" "$memtop" -b -p "$pypid" "$@" >/dev/null 2>"$dir/err" &
    mtpid=$!
    # Tracing once memtop says so (its probes are attached); the lock may
    # make it wait for other runs first.
    for ((i = 0; i < 3000; i++)); do
        grep -q '^memtop: tracing' "$dir/err" && { ok=1; break; }
        kill -0 "$mtpid" 2>/dev/null || break
        sleep 0.1
    done
    echo go >&9
    exec 9>&-
    wait "$pypid"
    wait "$mtpid"
    if [ -n "$ok" ]; then sed -n 's/^elapsed //p' "$dir/out" | tail -1; else echo fail; tail -3 "$dir/err" >&2; fi
    rm -rf "$dir"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "fail" || b == "" || b == 0) print "-"; else printf "%.2fx", a / b }'; }

printf '%-9s %10s %12s %10s %10s %10s %11s %10s %10s\n' WORKLOAD untraced tracemalloc default exact probes \
    in-process -p "-p exact"
for w in "${works[@]}"; do
    base=$(elapsed "$py" "$script" "$w")
    tm=$(elapsed "$py" "$script" "$w" --tracemalloc)
    df=$(elapsed "${lock[@]}" "$memtop" -b --python-objects -- "$py" "$script" "$w")
    ex=$(elapsed "${lock[@]}" "$memtop" -b --python-objects --exact -- "$py" "$script" "$w")
    ks=$(elapsed "${lock[@]}" "$memtop" -b --python-objects --sample 524288 --kernel-sampling \
        -- "$py" "$script" "$w")
    ip=$(elapsed "${lock[@]}" "$memtop" -b --python-objects --sample 524288 -- "$py" "$script" "$w")
    pd=$(attached --python-objects)
    pe=$(attached --python-objects --exact)
    printf '%-9s %9ss %12s %10s %10s %10s %11s %10s %10s\n' "$w" "$base" "$(ratio "$tm" "$base")" \
        "$(ratio "$df" "$base")" "$(ratio "$ex" "$base")" "$(ratio "$ks" "$base")" "$(ratio "$ip" "$base")" \
        "$(ratio "$pd" "$base")" "$(ratio "$pe" "$base")"
done
