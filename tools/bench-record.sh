#!/bin/bash
# --record under --heap-all on a busy host (issue 13): the recording's size
# per hour, what the deltas save, and its cost.
#
#  1. Size: `memtop --heap-all --record` (default -d 5, --record-interval
#     0.1) while a synthetic busy load runs for SECONDS: four loops of short
#     processes (ls, sort, awk, sed: hundreds of processes a second, each
#     with its own heap stacks), two allocation-heavy programs (python3 with
#     PYTHONMALLOC=malloc building and dropping dicts and lists) and a gcc
#     compile loop. The size per hour is extrapolated from SECONDS (say so
#     when quoting it); the same recording with every report's stacks whole
#     (format version 1's way) is computed from it for comparison.
#  2. Cost: a fixed workload (gcc compiles and the python program, a fixed
#     number of iterations) timed untraced, under `memtop --heap-all` and
#     under `memtop --heap-all --record`, interleaved over ROUNDS; medians
#     and ratios.
# Run as root, under the BPF lock:
#   sudo flock /tmp/memtop-bpf-tests.lock tools/bench-record.sh [SECONDS] [ROUNDS]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
secs=${1:-120}
rounds=${2:-3}
memtop=$build/user/memtop
py=/usr/bin/python3
[ -x "$memtop" ] || { echo "bench-record: build first" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-record: run as root" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; rm -rf "$tmp"' EXIT

# The allocation-heavy program: ITERATIONS rounds (or until SECONDS pass) of
# building a dict of lists and dropping a random old one.
cat >"$tmp/heavy.py" <<'EOF'
import random, sys, time
rounds, end = int(sys.argv[1]), time.time() + float(sys.argv[2])
keep = []
for n in range(rounds):
    keep.append({str(i): [i] * random.randint(1, 64) for i in range(100)})
    if len(keep) > 200:
        keep.pop(random.randrange(len(keep)))
    if n % 64 == 0 and time.time() > end:
        break
EOF
src=$root/tests/progs/c_sites.c

busy() {  # SECONDS: the synthetic busy host
    local end=$((SECONDS + $1)) pids=()
    for _ in 1 2 3 4; do
        (while [ $SECONDS -lt $end ]; do
            ls -l /usr/lib >/dev/null
            sort /etc/services | uniq -c >/dev/null
            awk '{n[$1]++} END {for (k in n) s += n[k]}' /etc/services
            sed s/a/b/g /etc/services >/dev/null
        done) &
        pids+=($!)
    done
    for _ in 1 2; do
        PYTHONMALLOC=malloc "$py" "$tmp/heavy.py" 100000000 "$1" &
        pids+=($!)
    done
    (while [ $SECONDS -lt $end ]; do gcc -O2 -I"$root/tests/progs" -c "$src" -o /dev/null; done) &
    pids+=($!)
    wait "${pids[@]}"  # not memtop, also a child
}

start_memtop() {  # ARG...: memtop --heap-all in the background, back when it watches
    "$memtop" --heap-all -b --json "$@" >/dev/null 2>"$tmp/err" &
    mpid=$!
    for _ in $(seq 600); do grep -q "memtop: tracing all processes\|memtop: watching" "$tmp/err" && return; sleep 0.1; done
    echo "bench-record: memtop did not start: $(cat "$tmp/err")" >&2
    exit 1
}
stop_memtop() {
    kill -TERM "$mpid"  # a background job of a script ignores SIGINT
    wait "$mpid" 2>/dev/null
}

# 1. Size (BENCH_COST_ONLY=1 skips it).
if [ -z "${BENCH_COST_ONLY:-}" ]; then
start_memtop --record "$tmp/busy.gz"
t0=$(date +%s.%N)
busy "$secs"
t1=$(date +%s.%N)
stop_memtop
bytes=$(stat -c %s "$tmp/busy.gz")
"$py" - "$tmp/busy.gz" "$tmp/whole.gz" "$root/tools/bench" <<'EOF' >"$tmp/whole.txt"
# The same recording with every report's stacks whole (format 1's way),
# folded from the deltas as memtop's reader does.
import gzip, json, sys
sys.path.insert(0, sys.argv[3])
from lengthen_recording import fold_report
state, counts = {}, {"sample": 0, "report": 0, "sample_processes": 0, "stacks_written": 0, "stacks": 0}
with gzip.open(sys.argv[1], "rt") as f, gzip.open(sys.argv[2], "wt") as out:
    for n, line in enumerate(f):
        try:
            r = json.loads(line)
        except ValueError:
            break  # the run's last record, cut by the kill
        if n > 0:
            counts[r["type"]] = counts.get(r["type"], 0) + 1
        if r.get("type") == "sample":
            counts["sample_processes"] += len(r.get("processes", []))
        rep = r.get("report") if r.get("type") == "report" else None
        if rep is not None:
            counts["stacks_written"] += fold_report(state, rep)
            counts["stacks"] += len(rep["all_stacks"])
        out.write(json.dumps(r, separators=(",", ":")) + "\n")
print(counts["sample"], counts["report"], counts["sample_processes"], counts["stacks_written"], counts["stacks"])
EOF
read -r nsamples nreports nsampled nwritten nstacks <"$tmp/whole.txt"
whole=$(stat -c %s "$tmp/whole.gz")
awk -v b="$bytes" -v w="$whole" -v t="$(echo "$t1 - $t0" | bc)" -v s="$nsamples" -v r="$nreports" \
    -v sp="$nsampled" -v sw="$nwritten" -v st="$nstacks" 'BEGIN {
    printf "busy --heap-all host, %.0f s recorded (-d 5, --record-interval 0.1):\n", t
    printf "  recording %.2f MB: %.1f MB per hour (extrapolated from %.0f s)\n", b / 1e6, b / 1e6 * 3600 / t, t
    printf "  %d samples (%.1f changed processes each), %d reports (%d stacks named in all, %d written: %.1f%%)\n",
        s, s ? sp / s : 0, r, st, sw, st ? 100 * sw / st : 0
    printf "  every report whole (format 1): %.2f MB, %.1f MB per hour: deltas make it %.1fx smaller\n",
        w / 1e6, w / 1e6 * 3600 / t, w / b }'

fi

# 2. Cost: the fixed workload, interleaved.
workload() {
    local start end
    start=$(date +%s%N)
    PYTHONMALLOC=malloc "$py" "$tmp/heavy.py" 20000 1e9 &
    local heavy=$!
    for _ in $(seq 8); do gcc -O2 -I"$root/tests/progs" -c "$src" -o /dev/null; done
    for _ in $(seq 150); do sort /etc/services | uniq -c >/dev/null; done
    wait "$heavy"
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
for ((r = 0; r < rounds; r++)); do
    workload >>"$tmp/none"
    start_memtop
    workload >>"$tmp/memtop"
    stop_memtop
    rm -f "$tmp/cost.gz"
    start_memtop --record "$tmp/cost.gz"
    workload >>"$tmp/record"
    stop_memtop
done
[ -n "${BENCH_RAW:-}" ] && for f in none memtop record; do echo "$f: $(tr "\n" " " <"$tmp/$f")"; done
n=$(median <"$tmp/none"); m=$(median <"$tmp/memtop"); rec=$(median <"$tmp/record")
printf 'fixed workload (gcc x8, python3 PYTHONMALLOC=malloc, sort x150), median of %d rounds, ms:\n' "$rounds"
awk -v n="$n" -v m="$m" -v r="$rec" 'BEGIN {
    printf "  untraced %d, memtop --heap-all %d (%.3fx), with --record %d (%.3fx untraced, %.3fx memtop without --record)\n",
        n, m, m / n, r, r / n, r / m }'
