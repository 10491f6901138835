#!/bin/bash
# An exactly counted CPython's final report (issue 17): the recording, the
# JSON and the pprof profile of `memtop --python-objects --exact --record
# --pprof -- python3.11 py_objects.py`, and `memtop report FILE --json`
# reading it back, with this build and with OLD_MEMTOP (e.g. a build of main
# before the final report's Python stacks were cut to -T), as ratios
# measured in the same run. Root: memtop traces.
#
#   sudo tools/bench-python-final.sh OLD_MEMTOP
#
# One run each, under the runtime tests' lock: a shared host's numbers, to
# compare within the run.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
old=${1:?usage: bench-python-final.sh OLD_MEMTOP}
new=$build/user/memtop
script=$root/tests/progs/python/py_objects.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME MEMTOP: wall seconds of the traced run and of the read-back, and
# the sizes of what it wrote, into $tmp/NAME.*.
run() {
    local name=$1 memtop=$2
    flock /tmp/memtop-bpf-tests.lock /usr/bin/time -f '%e' -o "$tmp/$name.run" "$memtop" --json --python-objects \
        --exact --record "$tmp/$name.gz" --pprof "$tmp/$name.pb.gz" -- /usr/bin/python3.11 "$script" --keep \
        >"$tmp/$name.json" 2>"$tmp/$name.err" || { echo "$name: memtop failed:"; tail -3 "$tmp/$name.err"; exit 1; }
    /usr/bin/time -f '%e' -o "$tmp/$name.read" "$memtop" report "$tmp/$name.gz" --json >/dev/null 2>&1 ||
        { echo "$name: memtop report failed"; exit 1; }
    echo "$name: run $(cat "$tmp/$name.run") s, recording $(stat -c %s "$tmp/$name.gz") B" \
        "($(zcat "$tmp/$name.gz" | tail -1 | wc -c) B of JSON in its final report)," \
        "profile $(stat -c %s "$tmp/$name.pb.gz") B, read back $(cat "$tmp/$name.read") s"
}
run old "$old"
run new "$new"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3fx", (b > 0 ? a / b : 0) }'; }
echo "new / old: run $(ratio "$(cat "$tmp/new.run")" "$(cat "$tmp/old.run")")," \
    "recording $(ratio "$(stat -c %s "$tmp/new.gz")" "$(stat -c %s "$tmp/old.gz")")," \
    "final report $(ratio "$(zcat "$tmp/new.gz" | tail -1 | wc -c)" "$(zcat "$tmp/old.gz" | tail -1 | wc -c)")," \
    "read back $(ratio "$(cat "$tmp/new.read")" "$(cat "$tmp/old.read")")"
