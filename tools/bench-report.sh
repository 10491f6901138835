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

"$py" - "$short" "$tmp/hour-v1.gz" "$tmp/hour-v2.gz" <<'EOF'
# Repeats SHORT's records to one hour; writes it whole (v1) and as deltas (v2).
import copy, gzip, json, sys
NUM = ["bytes", "allocs", "alloc_bytes_total", "allocs_total", "temp_allocs", "temp_bytes"]
def key(s):
    return (s["stats"]["pid"], s["stats"]["epoch"], s["stats"]["stack_id"])
recs, state = [], {}
with gzip.open(sys.argv[1], "rt") as f:
    header = json.loads(f.readline())
    for line in f:
        try:
            r = json.loads(line)
        except ValueError:
            break
        if r.get("type") == "report":
            rep = r["report"]
            if "all_stacks_delta" in rep:  # folded back to whole stacks
                d = rep.pop("all_stacks_delta")
                for k in d["gone"]:
                    state.pop(tuple(k), None)
                for c in d["changed"]:
                    if "k" in c:
                        s = state[tuple(c["k"])]
                        for i, n in enumerate(NUM):
                            s["stats"][n] = c["n"][i]
                        if "ages" in c:
                            s["ages"] = c["ages"]
                    else:
                        state[key(c)] = c
                rep["all_stacks"] = [copy.deepcopy(state[k]) for k in sorted(state)]
            else:
                state = {key(s): s for s in rep["all_stacks"]}
        elif r.get("type") == "sample" and "gone" in r:
            continue  # v2 samples are changes: the hour keeps the reports only
        else:
            r.pop("gone", None)
        recs.append(r)
def t(r):
    return r["report"]["time_ns"] if r.get("type") == "report" else r.get("time_ns", 0)
t0, t1 = t(recs[0]), t(recs[-1])
interval = header.get("interval", 1) * 1e9
span = t1 - t0 + interval
reps = int(3600e9 // span)
with gzip.open(sys.argv[2], "wt") as v1, gzip.open(sys.argv[3], "wt") as v2:
    h1 = dict(header, version=1)
    h2 = dict(header, version=2)
    v1.write(json.dumps(h1) + "\n")
    v2.write(json.dumps(h2) + "\n")
    prev = {}
    for k in range(reps):
        shift = int(k * span)
        for r in recs:
            r = copy.deepcopy(r)
            if r.get("type") == "report":
                r["report"]["time_ns"] += shift
                r["report"]["final"] = False
            elif "time_ns" in r:
                r["time_ns"] += shift
            line = json.dumps(r, separators=(",", ":"))
            v1.write(line + "\n")
            if r.get("type") == "report":
                now = {key(s): s for s in r["report"].pop("all_stacks")}
                changed = []
                for kk, s in sorted(now.items()):
                    p = prev.get(kk)
                    if p == s:
                        continue
                    if p is not None and {a: b for a, b in p.items() if a not in ("stats", "ages")} == \
                            {a: b for a, b in s.items() if a not in ("stats", "ages")}:
                        c = {"k": list(kk), "n": [s["stats"][n] for n in NUM]}
                        if p.get("ages") != s.get("ages"):
                            c["ages"] = s.get("ages")
                        changed.append(c)
                    else:
                        changed.append(s)
                gone = [list(kk) for kk in prev if kk not in now]
                r["report"]["all_stacks_delta"] = {"changed": changed, "gone": gone}
                prev = now
                line = json.dumps(r, separators=(",", ":"))
            v2.write(line + "\n")
print(f"{len(recs)} records repeated {reps} times ({span / 1e9:.1f} s each): one hour", file=sys.stderr)
EOF
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
