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

"$py" "$root/tools/bench/lengthen_recording.py" "$short" --reports "$reports" --v2 "$tmp/long.gz" || exit 1
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
