#!/usr/bin/env bash
# selftest.sh [KERNEL] - check that vmtest/run-vm.sh reports what happens in
# the guest: output and exit status, a failing command, --add with an ldd
# closure, a kernel panic (bad rdinit and a sysrq crash) and a timeout.
# KERNEL defaults to 6.1.  About 30 s under TCG.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k=${1:-6.1}
p=0 f=0
check() {  # NAME EXPECTED_RC EXPECTED_OUTPUT_REGEX -- run-vm args...
  local name=$1 want=$2 re=$3 out rc; shift 4
  out=$("$here/run-vm.sh" -q "$@" 2>/tmp/.selftest.$$) && rc=0 || rc=$?
  if [[ $rc == "$want" ]] && grep -qE "$re" <<<"$out"$'\n'"$(cat /tmp/.selftest.$$)"; then
    echo "ok   $name (exit $rc)"; p=$((p + 1))
  else
    echo "FAIL $name: exit $rc (want $want), output: $(head -c 300 <<<"$out")"; sed 's/^/     /' /tmp/.selftest.$$ | head -n 5
    f=$((f + 1))
  fi
  rm -f /tmp/.selftest.$$
}
check "uname -r"         0   '^[0-9]+\.[0-9]+'            -- "$k" -- uname -r
check "failing command"  3   '^to-stdout$'                -- "$k" -- sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'
check "mounts"           0   'tracefs.*bpf|bpf.*tracefs'  -- "$k" -- sh -c 'grep -E "tracefs|debugfs|bpf|cgroup2" /proc/mounts | tr "\n" " "'
check "--add ldd closure" 0  '^bpftool v'                 -- --add /usr/sbin/bpftool "$k" -- bpftool version
check "panic (cmdline)"  125 'Kernel panic'               -- --append rdinit=/nonexistent "$k" -- true
check "oops (sysrq)"     125 'sysrq triggered crash'      -- "$k" -- sh -c 'echo c >/proc/sysrq-trigger'
check "timeout"          124 'timeout after 12s'          -- --timeout 12 "$k" -- sleep 600
echo "selftest: $p passed, $f failed"
(( f == 0 ))
