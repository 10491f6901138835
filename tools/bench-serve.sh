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
    for ((i = 0; i < 200; i++)); do
        port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$tmp/$name.err" | head -1)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "bench-serve: memtop did not start serving:" >&2; cat "$tmp/$name.err" >&2; exit 1; }
    # The scrapers are threads of one process with keep-alive connections:
    # a curl process per request would itself be the host's busiest load
    # (--heap-all traces each one: exec, exit and new stacks by the hundred
    # per second) and measure that instead of the server.
    if [ "$n" -gt 0 ]; then
        /usr/bin/python3 - "$port" "$n" "$mt" "$tmp/$name.requests" <<'PY' &
import http.client, os, sys, threading
port, n, pid, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
counts = [0] * n
def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
def scrape(i):
    conn = None
    while alive():
        for path in ("/metrics", "/report.json", "/debug/pprof/heap"):
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    counts[i] += 1
            except (OSError, http.client.HTTPException):
                conn = None
threads = [threading.Thread(target=scrape, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
open(out, "w").write(str(sum(counts)))
PY
    fi
    wait "$mt"
    local rc=$?
    kill "$work" 2>/dev/null
    wait 2>/dev/null
    local reqs=0
    [ -e "$tmp/$name.requests" ] && reqs=$(cat "$tmp/$name.requests")
    python3 - "$tmp/$name.json" "$name" "$reqs" "$secs" "$rc" <<'PY'
import json, sys
path, name, reqs, secs, rc = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
last = [json.loads(l) for l in open(path) if l.strip()][-1]
lost = sum(v for v in last["lost"].values() if isinstance(v, int))
s = last["self"]
print(f"{name:12} exit {rc:>3}  requests {reqs:7d} ({reqs / secs:7.1f}/s)  memtop cpu {s['cpu_seconds']:6.2f} s "
      f"({100 * s['cpu_seconds'] / secs:5.1f}% of a core)  resident {s['rss_bytes'] / 2**20:6.1f} MiB  lost {lost}")
detail = {k: v for k, v in last["lost"].items() if isinstance(v, int) and v}
if detail:
    print(f"{'':12} lost by counter: " + ", ".join(f"{k} {v}" for k, v in sorted(detail.items())))
PY
}

echo "bench-serve: --heap-all for ${secs}s each, a malloc-heavy workload running; then ${clients} clients scraping"
run quiet 0
run scraped "$clients"
