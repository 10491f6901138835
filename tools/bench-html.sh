#!/bin/bash
# The HTML report and the pprof profile of a long recording (issue 13):
# time and peak RSS of `memtop report LONG --html OUT` and of
# `memtop report LONG --pprof OUT`, as ratios against baselines measured in
# the same run on the same file:
#   - `memtop report LONG --json` (the same build: reads the file and one
#     report, what every `memtop report` costs);
#   - OLD_MEMTOP's `report LONG --html` when given (e.g. a build of main
#     before the streamed page), and whether its page of SHORT holds the
#     same data, byte for byte, as this build's (a short recording: nothing
#     left out).
#
#   tools/bench-html.sh SHORT.gz [OLD_MEMTOP]
#
# SHORT.gz: a real recording, repeated (times shifted, stacks as version 2's
# deltas) to BENCH_HTML_REPORTS reports (default 3600: an hour at -d 1).
# Make one with e.g. `sudo memtop -b -d 1 --duration 5 --record short.gz`
# (the system view: every process's RSS, growth and mapping stacks) or
# `sudo memtop -b -d 1 --duration 5 --heap-all --record short.gz`.
# One run each: a shared host's numbers, to compare within the run.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
short=${1:?usage: bench-html.sh SHORT.gz [OLD_MEMTOP]}
old=${2:-}
memtop=$build/user/memtop
reports=${BENCH_HTML_REPORTS:-3600}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" - "$short" "$tmp/long.gz" "$reports" <<'EOF'
# Repeats SHORT's records until the file holds N reports; stacks as deltas.
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
                        for a in ("ages", "used_bytes"):
                            if a in c:
                                s[a] = c[a]
                    else:
                        state[key(c)] = c
                rep["all_stacks"] = [copy.deepcopy(state[k]) for k in sorted(state)]
            else:
                state = {key(s): s for s in rep["all_stacks"]}
        elif r.get("type") == "sample" and "gone" in r:
            continue  # samples are changes: the long file keeps the reports' numbers only
        recs.append(r)
def t(r):
    return r["report"]["time_ns"] if r.get("type") == "report" else r.get("time_ns", 0)
per = sum(1 for r in recs if r.get("type") == "report")
if per == 0:
    sys.exit("bench-html: SHORT holds no report")
span = t(recs[-1]) - t(recs[0]) + header.get("interval", 1) * 1e9
n, k, prev = 0, 0, {}
with gzip.open(sys.argv[2], "wt") as out:
    out.write(json.dumps(dict(header, version=2)) + "\n")
    while n < int(sys.argv[3]):
        shift = int(k * span)
        k += 1
        for r in recs:
            if n >= int(sys.argv[3]):
                break
            r = copy.deepcopy(r)
            if r.get("type") == "report":
                n += 1
                rep = r["report"]
                rep["time_ns"] += shift
                rep["final"] = n == int(sys.argv[3])
                now = {key(s): s for s in rep.pop("all_stacks")}
                changed = []
                for kk, s in sorted(now.items()):
                    p = prev.get(kk)
                    if p == s:
                        continue
                    same = p is not None and {a: b for a, b in p.items() if a not in ("stats", "ages", "used_bytes")} == \
                        {a: b for a, b in s.items() if a not in ("stats", "ages", "used_bytes")}
                    if same:
                        c = {"k": list(kk), "n": [s["stats"][m] for m in NUM]}
                        for a in ("ages", "used_bytes"):
                            if p.get(a) != s.get(a):
                                c[a] = s.get(a)
                        changed.append(c)
                    else:
                        changed.append(s)
                rep["all_stacks_delta"] = {"changed": changed, "gone": [list(kk) for kk in prev if kk not in now]}
                prev = now
            elif "time_ns" in r:
                r["time_ns"] += shift
            out.write(json.dumps(r, separators=(",", ":")) + "\n")
print(f"bench-html: {per} reports repeated to {n} ({span / 1e9:.1f} s a repeat)", file=sys.stderr)
EOF
echo "long recording: $(du -h "$tmp/long.gz" | cut -f1), $reports reports"

# measure NAME CMD...: wall seconds and peak RSS (KiB) into $tmp/NAME.
measure() {
    local name=$1
    shift
    /usr/bin/time -f '%e %M %x' -o "$tmp/$name.time" "$@" >/dev/null 2>"$tmp/$name.err"
    read -r wall rss rc <"$tmp/$name.time"
    printf '%-26s %8.2f s %9.1f MiB peak RSS  exit %s\n' "$name" "$wall" "$(echo "$rss / 1024" | bc -l)" "$rc"
    eval "${name//-/_}_wall=$wall ${name//-/_}_rss=$rss"
}
ratio() { echo "scale=2; $1 / $2" | bc -l; }

measure json-baseline "$memtop" report "$tmp/long.gz" --json
measure html-new "$memtop" report "$tmp/long.gz" --html "$tmp/new.html"
grep -v '^$' "$tmp/html-new.err" | head -3
echo "page: $(du -h "$tmp/new.html" | cut -f1)"
echo "new --html / --json: time $(ratio "$html_new_wall" "$json_baseline_wall")x, peak RSS $(ratio "$html_new_rss" "$json_baseline_rss")x"
measure pprof "$memtop" report "$tmp/long.gz" --pprof "$tmp/long.pb.gz"
echo "profile: $(du -h "$tmp/long.pb.gz" | cut -f1)"
echo "--pprof / --json: time $(ratio "$pprof_wall" "$json_baseline_wall")x, peak RSS $(ratio "$pprof_rss" "$json_baseline_rss")x"
if [ -n "$old" ]; then
    measure html-old "$old" report "$tmp/long.gz" --html "$tmp/old.html"
    echo "page (old): $(du -h "$tmp/old.html" | cut -f1)"
    echo "new --html / old --html: time $(ratio "$html_new_wall" "$html_old_wall")x, peak RSS $(ratio "$html_new_rss" "$html_old_rss")x"
    "$memtop" report "$short" --html "$tmp/short-new.html" >/dev/null 2>&1
    "$old" report "$short" --html "$tmp/short-old.html" >/dev/null 2>&1
    # The data the page draws (its script may differ between the builds).
    data() {
        "$py" -c 'import sys; s = open(sys.argv[1]).read(); o = "id=\"memtop-data\">"; a = s.index(o) + len(o); sys.stdout.write(s[a:s.index("</script>", a)])' "$1"
    }
    if cmp -s <(data "$tmp/short-new.html") <(data "$tmp/short-old.html"); then
        echo "SHORT's page data: byte-identical (old and new)"
    else
        echo "SHORT's page data: differs between old and new"
    fi
fi
