#!/bin/bash
# Prints, per BPF program of memtop, the number of instructions the kernel's
# verifier processed to load it (verified_insns, Linux 5.16+), for each BPF
# build: the full one, the compat one (--compat-bpf) and the full one walking
# frame pointers only (--frame-pointers-only, the other branch of the stack
# walk). Run as root.
#
#   tools/bpf-insns.sh                         # build/user/memtop
#   tools/bpf-insns.sh OLD/memtop NEW/memtop   # one column per build and binary
#   BPF_INSNS_VARIANTS="full compat" tools/bpf-insns.sh
#
# The counts are the kernel's, of the programs as memtop loads them: its
# loader sets read-only globals before the load (dwarf_unwind, nr_cpus,
# fault_sample_threshold, traced_only, ...), and the verifier skips the code
# they make dead, so the numbers are taken from a real memtop, not from
# bpftool loading the object. Each run starts `memtop -p PID -b` on a
# sleeping process of its own (so the uprobe programs are loaded and
# attached too), reads verified_insns from the fdinfo of memtop's program
# fds once memtop says it is tracing, and stops that memtop and that sleep.
# bpftool's JSON (v7.1) has no verified_insns; the fdinfo has had it since
# the same kernel release as bpf_prog_info. Program names come from bpftool.
#
# The counts depend on the kernel, on the machine's features (bpf_loop,
# uprobe_multi, possible CPUs) and on memtop's options: compare numbers taken
# on one machine with one memtop command line.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
variants=${BPF_INSNS_VARIANTS:-full compat fp}
[ $# -gt 0 ] || set -- "$root/build/user/memtop"

if [ "$(id -u)" != 0 ]; then
    echo "bpf-insns: run as root (memtop loads BPF programs)" >&2
    exit 1
fi
for m in "$@"; do
    [ -x "$m" ] || { echo "bpf-insns: $m: not an executable" >&2; exit 1; }
done

tmp=$(mktemp -d)
sleeper="" memtop=""
cleanup() {
    [ -n "$memtop" ] && kill "$memtop" 2>/dev/null && wait "$memtop" 2>/dev/null
    [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null && wait "$sleeper" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# measure MEMTOP VARIANT OUT: "name count" lines, sorted by name.
measure() {
    local bin=$1 variant=$2 out=$3 args=()
    case $variant in
        full) ;;
        compat) args=(--compat-bpf) ;;
        fp) args=(--frame-pointers-only) ;;
        *) echo "bpf-insns: unknown variant $variant (full, compat, fp)" >&2; return 1 ;;
    esac
    sleep 600 &
    sleeper=$!
    "$bin" -p "$sleeper" -b -d 600 "${args[@]}" >/dev/null 2>"$tmp/err" &
    memtop=$!
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q '^memtop: tracing' "$tmp/err" && break
        if ! kill -0 "$memtop" 2>/dev/null; then
            echo "bpf-insns: $bin ${args[*]} exited before tracing:" >&2
            cat "$tmp/err" >&2
            return 1
        fi
        sleep 0.1
    done
    if ! grep -q '^memtop: tracing' "$tmp/err"; then
        echo "bpf-insns: $bin ${args[*]} did not start tracing in 60 s:" >&2
        cat "$tmp/err" >&2
        return 1
    fi
    : >"$out"
    local fd id insns name
    for fd in /proc/"$memtop"/fd/*; do
        [ "$(readlink "$fd")" = "anon_inode:bpf-prog" ] || continue
        id=$(awk '$1 == "prog_id:" { print $2 }' /proc/"$memtop"/fdinfo/"${fd##*/}")
        insns=$(awk '$1 == "verified_insns:" { print $2 }' /proc/"$memtop"/fdinfo/"${fd##*/}")
        name=$("$bpftool" prog show id "$id" | sed -n '1s/.* name \([^ ]*\) .*/\1/p')
        echo "$name ${insns:-?}" >>"$out"
    done
    kill "$memtop" "$sleeper"
    wait "$memtop" "$sleeper" 2>/dev/null || true
    memtop="" sleeper=""
    sort -u -o "$out" "$out"
}

cols=() n=0 b=0
for bin in "$@"; do
    b=$((b + 1))
    [ $# -gt 1 ] && echo "[$b] $bin"
    for v in $variants; do
        n=$((n + 1))
        measure "$bin" "$v" "$tmp/col$n"
        if [ $# -gt 1 ]; then cols+=("${v}[$b]"); else cols+=("$v"); fi
    done
done

# One row per program name seen anywhere; "-" where a build has no such
# program (the compat build has no mappings, growth or rss_exact).
cat "$tmp"/col* | awk '{ print $1 }' | sort -u >"$tmp/names"
{
    printf 'program'
    for c in "${cols[@]}"; do printf ' %s' "$c"; done
    printf '\n'
    while read -r name; do
        printf '%s' "$name"
        for ((i = 1; i <= n; i++)); do
            v=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/col$i")
            printf ' %s' "${v:--}"
        done
        printf '\n'
    done <"$tmp/names"
} | column -t
