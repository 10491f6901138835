#!/bin/bash
# memtop's start-up (issue 15): what `memtop -- CMD` adds before CMD runs and
# around it, against baselines measured in the same run (absolute times on
# a shared VM mean little; the ratios and the added seconds are the result):
#   to first insn  from launching the command to CMD's first instruction
#                  (CMD is date, which prints the time it starts at)
#   wall           the whole of `memtop -b -- /bin/true` against /bin/true:
#                  start-up, the final report and detaching included
#   heaptrack      the same two for heaptrack -- CMD, when installed: the
#                  in-process tracer a developer picks instead
# Run as root: sudo tools/bench-startup.sh [ROUNDS] (default 7, interleaved;
# medians). MEMTOP_BUILD picks the build; MEMTOP_VS=OTHER_MEMTOP adds another
# memtop binary (e.g. main's) to the same rounds, for a before/after.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
memtop=$build/user/memtop
rounds=${1:-7}
vs=${MEMTOP_VS:-}
[ -x "$memtop" ] || { echo "bench-startup: build first (tools/build.sh)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-startup: run as root" >&2; exit 1; }
have_heaptrack=""
command -v heaptrack >/dev/null 2>&1 && have_heaptrack=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now_us() { echo "${EPOCHREALTIME/./}"; }
# first NAME TRACER...: microseconds from launch to CMD's first output of
# its start time (date +%s%6N), the tracer's own lines ignored.
first() {
    local name=$1 s t
    shift
    s=$(now_us)
    t=$("$@" /bin/date +%s%6N 2>/dev/null | grep -m1 -xE '[0-9]{16}')
    [ -n "$t" ] || { echo "bench-startup: $name printed no start time" >&2; exit 1; }
    echo $((t - s)) >>"$tmp/first.$name"
}
# wall NAME TRACER...: microseconds for the whole traced /bin/true.
wall() {
    local name=$1 s
    shift
    s=$(now_us)
    "$@" /bin/true >/dev/null 2>&1 || { echo "bench-startup: $name failed" >&2; exit 1; }
    echo $(($(now_us) - s)) >>"$tmp/wall.$name"
}
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "bench-startup: $rounds rounds, interleaved, medians" >&2
for ((r = 0; r < rounds; r++)); do
    first untraced
    first memtop "$memtop" -b --
    wall untraced
    wall memtop "$memtop" -b --
    if [ -n "$vs" ]; then
        first vs "$vs" -b --
        wall vs "$vs" -b --
    fi
    if [ -n "$have_heaptrack" ]; then
        # heaptrack writes its data file in the current directory.
        (cd "$tmp" && first heaptrack heaptrack -r) || exit 1
        (cd "$tmp" && wall heaptrack heaptrack -r) || exit 1
        rm -f "$tmp"/heaptrack.*
    fi
done

sec() { awk -v a="$1" 'BEGIN {printf "%.3f", a / 1e6}'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (a - b) / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
fu=$(median "$tmp/first.untraced") fm=$(median "$tmp/first.memtop")
wu=$(median "$tmp/wall.untraced") wm=$(median "$tmp/wall.memtop")
printf '%-36s %10s %10s\n' "configuration" "median s" "added s"
printf '%-36s %10s %10s\n' "untraced: to CMD's first insn" "$(sec "$fu")" "-"
printf '%-36s %10s %10s\n' "memtop -- CMD: to CMD's first insn" "$(sec "$fm")" "$(added "$fm" "$fu")"
printf '%-36s %10s %10s\n' "untraced /bin/true: wall" "$(sec "$wu")" "-"
printf '%-36s %10s %10s\n' "memtop -b -- /bin/true: wall" "$(sec "$wm")" "$(added "$wm" "$wu")"
if [ -n "$vs" ]; then
    fv=$(median "$tmp/first.vs") wv=$(median "$tmp/wall.vs")
    printf '%-36s %10s %10s\n' "MEMTOP_VS: to CMD's first insn" "$(sec "$fv")" "$(added "$fv" "$fu")"
    printf '%-36s %10s %10s\n' "MEMTOP_VS -b -- /bin/true: wall" "$(sec "$wv")" "$(added "$wv" "$wu")"
fi
if [ -n "$have_heaptrack" ]; then
    fh=$(median "$tmp/first.heaptrack") wh=$(median "$tmp/wall.heaptrack")
    printf '%-36s %10s %10s\n' "heaptrack -- CMD: to CMD's first insn" "$(sec "$fh")" "$(added "$fh" "$fu")"
    printf '%-36s %10s %10s\n' "heaptrack -r /bin/true: wall" "$(sec "$wh")" "$(added "$wh" "$wu")"
fi
echo
echo "memtop -- /bin/true / /bin/true (wall):        $(ratio "$wm" "$wu")"
echo "memtop to first insn / untraced:               $(ratio "$fm" "$fu")"
echo "memtop's added start-up: $(added "$fm" "$fu") s before CMD runs (issue 15: under 0.2 s)"
if [ -n "$vs" ]; then
    echo "added before CMD runs, memtop / MEMTOP_VS:     $(ratio "$((fm - fu))" "$((fv - fu))")"
    echo "added wall, memtop / MEMTOP_VS:                $(ratio "$((wm - wu))" "$((wv - wu))")"
fi
if [ -n "$have_heaptrack" ]; then
    echo "added before CMD runs, memtop / heaptrack:     $(ratio "$((fm - fu))" "$((fh - fu))")"
    echo "added wall, memtop / heaptrack:                $(ratio "$((wm - wu))" "$((wh - wu))")"
else
    echo "heaptrack: not installed (apt-get install heaptrack)"
fi
