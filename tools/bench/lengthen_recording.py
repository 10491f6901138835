#!/usr/bin/python3
"""Repeat a short real recording into a long one, for the report benchmarks.

    lengthen_recording.py SHORT.gz [--reports N] [--v1 OUT.gz] [--v2 OUT.gz]

SHORT's records are repeated with their times shifted by SHORT's span until
the file holds N reports (default: whole repeats up to one hour). --v1 writes
every report whole (version 1); --v2 writes stacks as changes against the
previous report (version 2's `all_stacks_delta`, what memtop records today).
Sample records that are changes (`gone`) are dropped: a long file keeps the
reports' numbers only. tools/bench-report.sh and tools/bench-html.sh use it;
tools/bench-record.sh imports fold_report.
"""
import argparse
import copy
import gzip
import json
import sys

NUM = ["bytes", "allocs", "alloc_bytes_total", "allocs_total", "temp_allocs", "temp_bytes"]
# Fields of a stack entry a delta may carry beside its numbers.
EXTRA = ("ages", "used_bytes")


def key(s):
    return (s["stats"]["pid"], s["stats"]["epoch"], s["stats"]["stack_id"])


def fold_report(state, rep):
    """Folds report `rep` (whole, or version 2's delta) into `state` (stacks
    by key) and gives it its whole stack list, as memtop's reader does.
    Returns how many stacks the record itself wrote."""
    if "all_stacks_delta" not in rep:
        state.clear()
        state.update({key(s): s for s in rep["all_stacks"]})
        return len(rep["all_stacks"])
    d = rep.pop("all_stacks_delta")
    for k in d["gone"]:
        state.pop(tuple(k), None)
    for c in d["changed"]:
        if "k" in c:
            s = state[tuple(c["k"])]
            for i, n in enumerate(NUM):
                s["stats"][n] = c["n"][i]
            for a in EXTRA:
                if a in c:
                    s[a] = c[a]
        else:
            state[key(c)] = c
    rep["all_stacks"] = [copy.deepcopy(state[k]) for k in sorted(state)]
    return len(d["changed"])


def read_short(path):
    """SHORT's header and records, every report with its whole stack list."""
    recs, state = [], {}
    with gzip.open(path, "rt") as f:
        header = json.loads(f.readline())
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                break  # a cut last line
            if r.get("type") == "report":
                fold_report(state, r["report"])
            elif r.get("type") == "sample" and "gone" in r:
                continue
            else:
                r.pop("gone", None)
            recs.append(r)
    return header, recs


def delta(prev, now):
    """Version 2's all_stacks_delta of `now` against `prev` (dicts by key)."""
    changed = []
    for kk, s in sorted(now.items()):
        p = prev.get(kk)
        if p == s:
            continue
        frames_same = p is not None and {a: b for a, b in p.items() if a not in ("stats",) + EXTRA} == {
            a: b for a, b in s.items() if a not in ("stats",) + EXTRA
        }
        if frames_same:
            c = {"k": list(kk), "n": [s["stats"][m] for m in NUM]}
            for a in EXTRA:
                if p.get(a) != s.get(a):
                    c[a] = s.get(a)
            changed.append(c)
        else:
            changed.append(s)
    return {"changed": changed, "gone": [list(kk) for kk in prev if kk not in now]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("short")
    ap.add_argument("--reports", type=int, default=0, help="reports to write (default: whole repeats to an hour)")
    ap.add_argument("--v1")
    ap.add_argument("--v2")
    a = ap.parse_args()
    header, recs = read_short(a.short)

    def t(r):
        return r["report"]["time_ns"] if r.get("type") == "report" else r.get("time_ns", 0)

    per = sum(1 for r in recs if r.get("type") == "report")
    if per == 0:
        sys.exit("lengthen_recording: SHORT holds no report")
    span = t(recs[-1]) - t(recs[0]) + header.get("interval", 1) * 1e9
    want = a.reports or per * max(1, int(3600e9 // span))
    outs = []
    for version, path in ((1, a.v1), (2, a.v2)):
        if path:
            f = gzip.open(path, "wt")
            f.write(json.dumps(dict(header, version=version)) + "\n")
            outs.append((version, f))
    n, k, prev = 0, 0, {}
    while n < want:
        shift = int(k * span)
        k += 1
        for r in recs:
            if n >= want:
                break
            r = copy.deepcopy(r)
            if r.get("type") == "report":
                n += 1
                rep = r["report"]
                rep["time_ns"] += shift
                rep["final"] = n == want
                whole = json.dumps(r, separators=(",", ":"))
                now = {key(s): s for s in rep.pop("all_stacks")}
                rep["all_stacks_delta"] = delta(prev, now)
                prev = now
                lines = {1: whole, 2: json.dumps(r, separators=(",", ":"))}
            else:
                if "time_ns" in r:
                    r["time_ns"] += shift
                line = json.dumps(r, separators=(",", ":"))
                lines = {1: line, 2: line}
            for version, f in outs:
                f.write(lines[version] + "\n")
    for _, f in outs:
        f.close()
    print(f"{per} reports repeated to {n} ({span / 1e9:.1f} s a repeat)", file=sys.stderr)


if __name__ == "__main__":
    main()
