#!/bin/bash
# --listen under load: memtop --heap-all serving while many clients scrape
# it, against the same run without clients, one after the other on this
# host (issue 14's load test). Prints, per run: requests answered, memtop's
# CPU seconds and resident memory at the end, and what it lost (the sum of
# its lost counters): scraping must not make it lose events it did not lose
# without, and its cost must stay bounded.
#   sudo tools/bench-serve.sh [SECONDS] [CLIENTS]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
secs=${1:-30}
clients=${2:-16}
memtop=$build/user/memtop
[ -x "$memtop" ] || { echo "bench-serve: build first (tools/build.sh)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-serve: run as root" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench-serve: needs curl" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

# The host's work while memtop watches: a program allocating all the time.
workload() { while :; do ls -lR /usr/share/doc >/dev/null 2>&1; done; }

run() {  # NAME CLIENTS
    local name=$1 n=$2 port="" i
    workload & local work=$!
    "$memtop" --heap-all --json -o "$tmp/$name.json" -d 2 --duration "$secs" --listen 127.0.0.1:0 \
        2>"$tmp/$name.err" &
    local mt=$!
    for ((i = 0; i < 200 && -z "$port"; i++)); do
        port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$tmp/$name.err" | head -1)
        sleep 0.1
    done
    [ -n "$port" ] || { echo "bench-serve: memtop did not start serving:" >&2; cat "$tmp/$name.err" >&2; exit 1; }
    for ((i = 0; i < n; i++)); do
        (
            c=0
            while kill -0 "$mt" 2>/dev/null; do
                for path in /metrics /report.json /debug/pprof/heap; do
                    curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$port$path" && c=$((c + 1))
                done
            done
            echo "$c" >"$tmp/$name.client$i"
        ) &
    done
    wait "$mt"
    local rc=$?
    kill "$work" 2>/dev/null
    wait 2>/dev/null
    local reqs=0
    for f in "$tmp/$name".client*; do [ -e "$f" ] && reqs=$((reqs + $(cat "$f"))); done
    python3 - "$tmp/$name.json" "$name" "$reqs" "$secs" "$rc" <<'PY'
import json, sys
path, name, reqs, secs, rc = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
last = [json.loads(l) for l in open(path) if l.strip()][-1]
lost = sum(v for v in last["lost"].values() if isinstance(v, int))
s = last["self"]
print(f"{name:12} exit {rc:>3}  requests {reqs:7d} ({reqs / secs:7.1f}/s)  memtop cpu {s['cpu_seconds']:6.2f} s "
      f"({100 * s['cpu_seconds'] / secs:5.1f}% of a core)  resident {s['rss_bytes'] / 2**20:6.1f} MiB  lost {lost}")
PY
}

echo "bench-serve: --heap-all for ${secs}s each, a malloc-heavy workload running; then ${clients} clients scraping"
run quiet 0
run scraped "$clients"
