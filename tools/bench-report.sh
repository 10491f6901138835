#!/bin/bash
# Reading a long recording (issue 13): time and peak memory of
# `memtop report FILE` on a synthetic one-hour recording, made by repeating
# a real short one (its reports and samples, times shifted) to fill an
# hour at its own report interval.
#
#   tools/bench-report.sh SHORT.gz [MEMTOP...]
#
# SHORT.gz: a real recording (e.g. `sudo memtop --json -d 1 --duration 4
# --record short.gz`, the system view). The hour is written twice: with
# every report's stacks whole (format version 1, what older memtops wrote
# and read) and as version 2's deltas. Each MEMTOP (default: this build's)
# reads each file it can (a memtop before version 2 cannot read the
# second): wall time and peak RSS from /usr/bin/time -v, one run each.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
short=${1:?usage: bench-report.sh SHORT.gz [MEMTOP...]}
shift
memtops=("$@")
[ ${#memtops[@]} -eq 0 ] && memtops=("$build/user/memtop")
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" "$root/tools/bench/lengthen_recording.py" "$short" --v1 "$tmp/hour-v1.gz" --v2 "$tmp/hour-v2.gz"
# BENCH_REPORT_VERSIONS="v2": read only those files (v1 takes minutes).
versions=${BENCH_REPORT_VERSIONS:-v1 v2}
for v in $versions; do
    printf '%s: %s\n' "hour-$v.gz" "$(du -h "$tmp/hour-$v.gz" | cut -f1)"
done
for m in "${memtops[@]}"; do
    for v in $versions; do
        /usr/bin/time -v "$m" report "$tmp/hour-$v.gz" --json >/dev/null 2>"$tmp/time" || true
        if grep -q "not a memtop\|newer memtop" "$tmp/time"; then
            echo "$m, hour-$v: $(grep -m1 memtop: "$tmp/time" | cut -c1-160)..."
            continue
        fi
        awk -v m="$m" -v v="$v" -F': ' '
            /Elapsed \(wall clock\)/ {w = $2}
            /Maximum resident set size/ {r = $2}
            /Exit status/ {e = $2}
            END {printf "%s, hour-%s: %s wall, %.0f MB peak RSS, exit %s\n", m, v, w, r / 1024, e}' "$tmp/time"
    done
done
