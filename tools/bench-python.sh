#!/bin/bash
# memtop's cost on allocation-heavy Python (tests/progs/python/bench_alloc.py),
# against untraced runs measured in the same run (ratios are the result):
#   untraced     python3.11 WORK
#   tracemalloc  the same with tracemalloc started in the process
#   memtop       memtop -b --python-objects -- python3.11 WORK (exact)
#   sampled      memtop -b --python-objects --sample 524288 -- python3.11 WORK
# Each workload times its own loop ("elapsed S"), so memtop's start-up is
# not counted. memtop traces Python's object allocator too, as asked (one trap per
# object allocated or freed at pymalloc's inlined sites, docs/design.md,
# "Python's object allocator"), always exactly: --sample samples the native
# heap only. `example` is tracemalloc's classic (100,000 ints appended to a
# list, run three times).
# Run as root: sudo tools/bench-python.sh [WORKLOAD...]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
memtop=$build/user/memtop
py=/usr/bin/python3.11
script=$root/tests/progs/python/bench_alloc.py
[ -x "$memtop" ] || { echo "bench-python: build first (tools/build.sh)" >&2; exit 1; }
[ -x "$py" ] || { echo "bench-python: needs $py (Debian's python3.11)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-python: run as root" >&2; exit 1; }
works=("$@")
[ ${#works[@]} -gt 0 ] || works=(example ints dicts objects bytes)

# elapsed CMD...: the workload's own seconds, or "fail".
elapsed() {
    local out
    out=$("$@" 2>&1) || { echo fail; echo "$out" | tail -3 >&2; return; }
    echo "$out" | sed -n 's/^elapsed //p' | tail -1
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "fail" || b == "" || b == 0) print "-"; else printf "%.2fx", a / b }'; }

printf '%-9s %10s %12s %10s %10s\n' WORKLOAD untraced tracemalloc memtop sampled
for w in "${works[@]}"; do
    base=$(elapsed "$py" "$script" "$w")
    tm=$(elapsed "$py" "$script" "$w" --tracemalloc)
    ex=$(elapsed flock /tmp/memtop-bpf-tests.lock "$memtop" -b --python-objects -- "$py" "$script" "$w")
    sa=$(elapsed flock /tmp/memtop-bpf-tests.lock "$memtop" -b --python-objects --sample 524288 -- "$py" "$script" "$w")
    printf '%-9s %9ss %12s %10s %10s\n' "$w" "$base" "$(ratio "$tm" "$base")" "$(ratio "$ex" "$base")" \
        "$(ratio "$sa" "$base")"
done
