#!/bin/bash
# memtop's attach time (issue 18: what parsing files in memtop-cfi costs):
# from launching `memtop -v --json -p PID` on a parked deep_sites (its
# program and library, libc, libstdc++, libm, libgcc_s, ld.so) to its
# "memtop: tracing" line: loading the BPF programs, reading which files
# define an allocator, their unwind tables and probe placement. Against
# another memtop binary measured in the same rounds (MEMTOP_VS, e.g. main's
# build): the ratio is the result, absolute times on a shared VM mean
# little.
# Run as root: sudo MEMTOP_VS=OTHER_MEMTOP tools/bench-attach.sh [ROUNDS]
# (default 5; the two binaries alternate, the first of each pair swapped
# every round; medians and minimums). MEMTOP_BUILD picks the build.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
memtop=$build/user/memtop
prog=$build/tests/progs/deep_sites
rounds=${1:-5}
vs=${MEMTOP_VS:-}
[ -x "$memtop" ] && [ -x "$prog" ] || { echo "bench-attach: build first (tools/build.sh)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-attach: run as root" >&2; exit 1; }
[ -n "$vs" ] && [ -x "$vs" ] || { echo "bench-attach: MEMTOP_VS=OTHER_MEMTOP names the baseline binary" >&2; exit 1; }
tmp=$(mktemp -d)
mkfifo "$tmp/in" "$tmp/err"
# The parked program: "ready PID", then it waits for a line on stdin (held
# open on fd 3 until the end).
"$prog" --wait <"$tmp/in" >"$tmp/out" 2>/dev/null &
parked=$!
exec 3>"$tmp/in"
trap 'exec 3>&-; kill "$parked" 2>/dev/null; wait "$parked" 2>/dev/null; rm -rf "$tmp"' EXIT
for ((i = 0; i < 500; i++)); do
    grep -q '^ready' "$tmp/out" 2>/dev/null && break
    sleep 0.01
done
grep -q '^ready' "$tmp/out" || { echo "bench-attach: $prog did not start" >&2; exit 1; }

# attach NAME BINARY: microseconds from launch to the "memtop: tracing" line.
attach() {
    local name=$1 bin=$2 s t="" line mp
    s=${EPOCHREALTIME/./}
    "$bin" -v --json -p "$parked" >/dev/null 2>"$tmp/err" &
    mp=$!
    exec 4<"$tmp/err"
    while IFS= read -r -u 4 line; do
        case $line in "memtop: tracing"*)
            t=${EPOCHREALTIME/./}
            break
            ;;
        esac
    done
    kill -INT "$mp" 2>/dev/null
    cat <&4 >/dev/null  # what it says until it exits
    exec 4<&-
    wait "$mp"
    [ -n "$t" ] || { echo "bench-attach: $name did not attach" >&2; exit 1; }
    echo $((t - s)) >>"$tmp/attach.$name"
}
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
minimum() { sort -n "$1" | head -1; }

echo "bench-attach: $rounds rounds, alternated, on pid $parked" >&2
for ((r = 0; r < rounds; r++)); do
    if ((r % 2)); then
        attach vs "$vs"
        attach memtop "$memtop"
    else
        attach memtop "$memtop"
        attach vs "$vs"
    fi
done

ms() { awk -v a="$1" 'BEGIN {printf "%.1f", a / 1e3}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
mm=$(median "$tmp/attach.memtop") mv=$(median "$tmp/attach.vs")
nm=$(minimum "$tmp/attach.memtop") nv=$(minimum "$tmp/attach.vs")
printf '%-28s %10s %10s   %s\n' "binary" "median ms" "min ms" "each run, ms"
printf '%-28s %10s %10s   %s\n' "MEMTOP_VS (baseline)" "$(ms "$mv")" "$(ms "$nv")" \
    "$(awk '{printf "%.1f ", $1 / 1e3}' "$tmp/attach.vs")"
printf '%-28s %10s %10s   %s\n' "this build" "$(ms "$mm")" "$(ms "$nm")" \
    "$(awk '{printf "%.1f ", $1 / 1e3}' "$tmp/attach.memtop")"
printf 'ratio this/baseline: median %s, minimum %s\n' "$(ratio "$mm" "$mv")" "$(ratio "$nm" "$nv")"
