#!/bin/sh
# guest-runtime-tests.sh - runs INSIDE a vmtest guest (busybox + the files
# vmtest/run-tests.sh copied in); not meant for the host.
#
# Usage: guest-runtime-tests.sh MEMTOP RUNTIME_TESTS [CATCH2-TEST-SPEC...]
#
# 1. Preflight: `memtop -- /bin/sh -c 'read x <FIFO'`; prints memtop's
#    "memtop: tracing ..." line and how the uprobes were attached, read from
#    memtop's open fds (classic uprobes: one perf_event fd per probe, more
#    than the syscall tracepoints' few; uprobe_multi links: bpf_link fds).  If memtop fails, its one-line
#    error becomes a NOTE, with the libbpf lines of `memtop -v` that say why.
# 2. runtime_tests with CI=true, the compact reporter and per-test durations;
#    its output is printed as is.
# 3. One line per test case (PASS/FAIL/SKIP, seconds, name), then
#    "runtime_tests: N passed, N failed, N skipped" for vmtest/matrix.sh.
#    Lines "NOTE: ..." and "SKIP: ..." end up in the matrix's NOTE column.
memtop=$1 rt=$2
shift 2
export CI=true
# The memtop run-tests.sh chose (MEMTOP_BIN there): runtime_tests would
# otherwise run the one whose path it was compiled with.
export MEMTOP_BIN="$memtop"
tmp=$(mktemp -d /tmp/rt.XXXXXX)
now() { cut -d' ' -f1 /proc/uptime; }

echo "== kernel $(uname -r), memtop $memtop"
for f in "$memtop" "$rt"; do
  if [ ! -x "$f" ]; then
    echo "NOTE: not in the guest: $f"
    echo "runtime_tests: 0 passed, 1 failed, 0 skipped"
    exit 1
  fi
done

# ---- 1. preflight --------------------------------------------------------
fifo=$tmp/fifo
mkfifo "$fifo"
t0=$(now)
"$memtop" -- /bin/sh -c "read x <$fifo" >"$tmp/pre.out" 2>"$tmp/pre.err" &
mpid=$!
state=running
i=0
while [ $i -lt 600 ]; do   # 60 s
  if grep -q '^memtop: tracing' "$tmp/pre.err" 2>/dev/null; then state=tracing; break; fi
  kill -0 "$mpid" 2>/dev/null || { state=exited; break; }
  sleep 0.1; i=$((i + 1))
done
if [ $state = tracing ]; then
  t1=$(now)
  ls -l "/proc/$mpid/fd" >"$tmp/fds" 2>/dev/null
  nperf=$(grep -c 'anon_inode:\[perf_event\]' "$tmp/fds")
  nlink=$(grep -c 'anon_inode:bpf_link' "$tmp/fds")
  nprobes=$(sed -n 's/.*libraries, \([0-9]*\) probes.*/\1/p' "$tmp/pre.err" | head -n 1)
  if [ "$nperf" -lt "${nprobes:-1}" ]; then how="uprobe_multi links"; else how="perf-event uprobes"; fi
  timeout 20 sh -c "echo >$fifo"
fi
[ $state = running ] && kill "$mpid" 2>/dev/null
wait "$mpid"
mrc=$?
cat "$tmp/pre.err"
if [ $state = tracing ] && [ $mrc -eq 0 ]; then
  echo "preflight: ok, attached in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s; $nperf perf_event fds, $nlink bpf_link fds: $how"
  echo "NOTE: $how"
  # anything else memtop says when it starts (e.g. which BPF build it chose)
  grep -v '^memtop: tracing' "$tmp/pre.err" | grep . | head -n 2 | cut -c1-160 | sed 's/^/NOTE: /'
else
  echo "preflight: FAILED (memtop exit $mrc, $state)"
  last=$(grep . "$tmp/pre.err" | tail -n 1)   # the error; notices come first
  echo "NOTE: ${last:-memtop exited $mrc without a message}"
  # Why, in libbpf's words (the verbose log is long: keep its error lines).
  "$memtop" -v -- /bin/sh -c : >/dev/null 2>"$tmp/pre.verbose" </dev/null
  grep -E '^libbpf: .*([Ee]rror|[Ff]ailed|[Ii]nvalid|unknown|not supported|unsupported)' "$tmp/pre.verbose" \
    | grep -v 'failed to load BPF skeleton' | head -n 5 | sed 's/^/preflight: memtop -v: /'
  cause=$(grep -E '^libbpf: .*([Ee]rror|[Ff]ailed|[Ii]nvalid|unknown|not supported|unsupported)' "$tmp/pre.verbose" \
    | grep -v -m1 -E '[Rr]etrying')
  [ -n "$cause" ] && echo "NOTE: cause: $cause"
fi

# ---- 2. the tests --------------------------------------------------------
"$rt" --list-test-names-only "$@" 2>/dev/null | grep . >"$tmp/names"
echo "== runtime_tests ${*:-(all)}: $(wc -l <"$tmp/names") test cases, CI=true"
t0=$(now)
( cd /tmp && "$rt" -r compact --use-colour no --durations yes "$@"; echo "$?" >"$tmp/rc" ) 2>&1 | tee "$tmp/out"
rc=$(cat "$tmp/rc" 2>/dev/null || echo '?')
echo "== runtime_tests exit $rc after $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s"

# ---- 3. per-test results ---------------------------------------------------
# Compact reporter: failures ("FILE:LINE: failed: ...") and warnings come
# before the test's "SECONDS s: NAME" durations line.
awk -v names="$tmp/names" -v rc="$rc" '
  BEGIN { while ((getline l < names) > 0) { n++; order[n] = l } }
  /^[^ ]+:[0-9]+: failed/ { failed = 1 }
  /^[^ ]+:[0-9]+: warning: .*skipped: / { if (!why) { why = $0; sub(/.*skipped: /, "", why); sub(/.$/, "", why) } }
  /^[0-9]+\.[0-9]+ s: / {
    name = $0; sub(/^[0-9.]+ s: /, "", name)
    res[name] = failed ? "FAIL" : (why != "" ? "SKIP" : "PASS"); secs[name] = $1; reason[name] = why
    failed = 0; why = ""
  }
  END {
    for (i = 1; i <= n; i++) {
      t = order[i]
      if (!(t in res)) { res[t] = "FAIL"; secs[t] = "-"; reason[t] = "did not finish (runtime_tests exit " rc ")" }
      r = res[t]; c[r]++
      printf "%-4s %7s  %s%s\n", r, secs[t], t, (reason[t] != "" ? "  (" reason[t] ")" : "")
      if (r == "SKIP") printf "SKIP: %s\n", reason[t]
    }
    if (n == 0) { c["FAIL"] = 1; print "FAIL: no test cases listed (runtime_tests exit " rc ")" }
    printf "runtime_tests: %d passed, %d failed, %d skipped\n", c["PASS"], c["FAIL"], c["SKIP"]
  }' "$tmp/out"
rm -rf "$tmp"
