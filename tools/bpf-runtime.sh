#!/bin/bash
# Where memtop's time on the hot path goes: the kernel's own per-program run
# time (kernel.bpf_stats_enabled: run_time_ns and run_cnt per program) while
# memtop traces the bench's malloc(64)/free loop. Prints, per program that
# ran, how many times it ran and its mean ns per run (the program alone: not
# the trap, not the uprobe machinery around it). Run as root.
#
#   tools/bpf-runtime.sh [ITERATIONS] [-- MEMTOP OPTIONS...]
#   tools/bpf-runtime.sh 200000 -- --sample 524288
#
# bpf_stats costs two clock reads per program run while on; it is switched
# back off at the end (if it was off). Compare runs made on one machine.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
iters=200000
if [ $# -gt 0 ] && [ "$1" != "--" ]; then iters=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
loop=$build/tools/bench/malloc_loop
memtop=${MEMTOP:-$build/user/memtop}
[ -x "$loop" ] && [ -x "$memtop" ] || { echo "bpf-runtime: build first" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bpf-runtime: run as root" >&2; exit 1; }

tmp=$(mktemp -d)
was=$(sysctl -n kernel.bpf_stats_enabled)
lpid="" mpid=""
cleanup() {
    [ -n "$mpid" ] && kill "$mpid" 2>/dev/null && wait "$mpid" 2>/dev/null
    [ -n "$lpid" ] && kill "$lpid" 2>/dev/null && wait "$lpid" 2>/dev/null
    sysctl -qw kernel.bpf_stats_enabled="$was"
    rm -rf "$tmp"
}
trap cleanup EXIT

mkfifo "$tmp/go"
"$loop" "$iters" --wait <"$tmp/go" >"$tmp/out" &
lpid=$!
exec 3>"$tmp/go"
for ((i = 0; i < 200; i++)); do grep -q '^ready' "$tmp/out" && break; sleep 0.05; done
"$memtop" -p "$lpid" -b -d 3600 "$@" >/dev/null 2>"$tmp/err" &
mpid=$!
for ((i = 0; i < 1200; i++)); do
    grep -q '^memtop: tracing' "$tmp/err" && break
    kill -0 "$mpid" 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
    sleep 0.05
done
sysctl -qw kernel.bpf_stats_enabled=1
# "id name" of memtop's programs, from its fds.
for fd in /proc/"$mpid"/fd/*; do
    [ "$(readlink "$fd")" = "anon_inode:bpf-prog" ] || continue
    awk '$1 == "prog_id:" { print $2 }' /proc/"$mpid"/fdinfo/"${fd##*/}"
done | sort -u >"$tmp/ids"
snap() {  # -> "name run_cnt run_time_ns" per program
    local id
    while read -r id; do
        "$bpftool" prog show id "$id" | sed -n '1s/.* name \([^ ]*\) .*run_time_ns \([0-9]*\) run_cnt \([0-9]*\).*/\1 \3 \2/p;1s/.* name \([^ ]*\) .*/\1 0 0/p' | head -1
    done <"$tmp/ids"
}
snap | sort >"$tmp/before"
echo go >&3
exec 3>&-
wait "$lpid" || true
lpid=""
snap | sort >"$tmp/after"
awk '/^ns_per_pair/ { print "loop: ns_per_pair " $2 " (bpf_stats on)" }' "$tmp/out"
join "$tmp/before" "$tmp/after" | awk '
    { n = $4 - $2; t = $5 - $3; if (n > 0) printf "%-22s %10d runs %9.0f ns/run %8.0f ns/pair\n", $1, n, t / n, t / '"$iters"' }'
