#!/usr/bin/env bash
# selftest.sh [KERNEL] - check that vmtest/run-vm.sh reports what happens in
# the guest: output and exit status, a failing command, --add with an ldd
# closure, a kernel panic (bad rdinit and a sysrq crash), a timeout, a guest
# that never boots, and the fall back to TCG from a KVM that does not work
# (one that never leaves the firmware, played by a guest whose CPU never
# starts, and one that fails at once).
# KERNEL defaults to 6.1.  About 60 s under TCG.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k=${1:-6.1}
p=0 f=0
check() {  # NAME EXPECTED_RC EXPECTED_OUTPUT_REGEX -- [VAR=VALUE...] run-vm args...
  local name=$1 want=$2 re=$3 out rc envs=(); shift 4
  while [[ ${1:-} == MEMTOP_*=* ]]; do envs+=("$1"); shift; done
  # The accelerator decided for the run does not apply to the probe checks.
  [[ ${#envs[@]} -gt 0 ]] && envs=(-u MEMTOP_VMTEST_ACCEL "${envs[@]}")
  out=$(env "${envs[@]}" "$here/run-vm.sh" -q "$@" 2>/tmp/.selftest.$$) && rc=0 || rc=$?
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
check "did not boot"     123 'did not boot: nothing from .* past the firmware in 8s' -- --qemu-arg -S --boot-timeout 8 "$k" -- true
check "kvm hangs: tcg"   0   'kvm present but not usable here: using TCG' \
  -- MEMTOP_VMTEST_KVM_PROBE='-accel tcg -S' MEMTOP_VMTEST_PROBE_TIMEOUT=6 "$k" -- uname -r
check "kvm fails: tcg"   0   'kvm present but not usable here: using TCG .*qemu-system' \
  -- MEMTOP_VMTEST_KVM_PROBE='-accel kvm -cpu no-such-cpu' "$k" -- uname -r
echo "selftest: $p passed, $f failed"
(( f == 0 ))
