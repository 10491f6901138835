#!/usr/bin/env bash
# ci.sh - the VM stage of CI (run by .ci/run after the native tests): memtop's
# runtime tests on every kernel of the matrix, within a time budget.
#
# Usage:
#   vmtest/ci.sh [--budget SEC] [--timeout SEC] [--build DIR] [--logs DIR] [KERNEL...]
#
#   --budget SEC    wall-clock limit for everything below, package
#                   installation included (default $MEMTOP_VMTEST_BUDGET or
#                   2100); when it runs out the VMs are stopped and ci.sh fails
#   --timeout SEC   limit per VM (default 900; the suite takes 200-530 s under TCG, two VMs at a time on 2 cores)
#   --build DIR     build tree with memtop and runtime_tests (default
#                   $MEMTOP_BUILD or ./build; built with tools/build.sh if
#                   runtime_tests is missing)
#   --logs DIR      keep each kernel's output and console log there (default:
#                   a temporary directory, kept only when something failed)
#   KERNEL...       default: $MEMTOP_VMTEST_KERNELS or 5.10 6.1 6.12 7
#   (the expected failures are read from $MEMTOP_VMTEST_XFAIL if set)
#
# Steps: install tools/deps-vmtest.txt (tools/install-deps.sh), decide the
# accelerator once (a probe boot under KVM, else TCG), fetch the kernels (cached in ${XDG_CACHE_HOME:-$HOME/.cache}/memtop/kernels, or
# $MEMTOP_KERNEL_CACHE: reruns do no downloads), run vmtest/run-tests.sh,
# then compare each kernel's result with vmtest/expected-failures.txt, and
# run selftest.sh (the harness reports failures, panics and timeouts).
#
# Exit status 0 when every kernel not listed there passed and every listed
# one failed; 1 otherwise (a failure, an unexpected pass, a kernel that could
# not be fetched or run, or the budget ran out); 2 setup error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/kernels.sh"

budget=${MEMTOP_VMTEST_BUDGET:-2100} timeout_s=900 build=${MEMTOP_BUILD:-$repo/build} logs='' kernels=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --budget) budget=$2; shift ;;
    --timeout) timeout_s=$2; shift ;;
    --build) build=$2; shift ;;
    --logs) logs=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "vmtest-ci: unknown option $1" >&2; exit 2 ;;
    *) kernels+=("$1") ;;
  esac
  shift
done
[[ ${#kernels[@]} -gt 0 ]] || read -r -a kernels <<<"${MEMTOP_VMTEST_KERNELS:-$MEMTOP_KERNELS_DEFAULT}"
[[ $budget =~ ^[0-9]+$ && $timeout_s =~ ^[0-9]+$ ]] || { echo "vmtest-ci: --budget/--timeout take seconds" >&2; exit 2; }

t_start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - t_start) )); }
say() { echo "vmtest-ci: $*"; }

# 1. Tools.
say "installing $(tr '\n' ' ' <"$repo/tools/deps-vmtest.txt")(if missing)"
"$repo/tools/install-deps.sh" "$repo/tools/deps-vmtest.txt" || { say "error: package installation failed"; exit 2; }

# 2. The build.
if [[ ! -x $build/tests/runtime/runtime_tests ]]; then
  say "no $build/tests/runtime/runtime_tests: building"
  MEMTOP_BUILD=$build "$repo/tools/build.sh" || { say "error: build failed"; exit 2; }
fi

# 2b. The accelerator, once for every VM of the run: KVM only if a probe
#     boot under it reaches /init (run-vm.sh); /dev/kvm alone proves nothing.
if [[ -z ${MEMTOP_VMTEST_ACCEL:-} ]]; then
  accel_err=$(mktemp)
  MEMTOP_VMTEST_ACCEL=$("$here/run-vm.sh" --probe-accel "${kernels[0]}" 2>"$accel_err") || MEMTOP_VMTEST_ACCEL=tcg
  sed 's/^run-vm: /vmtest-ci: /' "$accel_err"
  rm -f "$accel_err"
fi
export MEMTOP_VMTEST_ACCEL
say "accelerator: $MEMTOP_VMTEST_ACCEL"

# 3. Expected failures.
declare -A xfail=()
while read -r k reason; do
  [[ -z $k || $k == \#* ]] && continue
  xfail[$k]=${reason:-no reason given}
done <"${MEMTOP_VMTEST_XFAIL:-$here/expected-failures.txt}"

# 4. The VMs, in their own process group under the remaining budget.
keep_logs=1
if [[ -z $logs ]]; then logs=$(mktemp -d "${TMPDIR:-/tmp}/memtop-vmtest-ci.XXXXXX"); keep_logs=0; fi
mkdir -p "$logs"
results=$logs/results
rm -f "$results"
rem=$(left)
(( rem > 30 )) || { say "error: no time left of the ${budget}s budget after installation"; exit 1; }
say "kernels ${kernels[*]}; ${rem}s of the ${budget}s budget left; ${timeout_s}s per VM; logs $logs"
rc=0
timeout -k 20 "$rem" "$here/run-tests.sh" --build "$build" --timeout "$timeout_s" \
  --logs "$logs" --results "$results" "${kernels[@]}" || rc=$?
budget_hit=0
(( rc == 124 || rc == 137 )) && ! [[ -s $results ]] && budget_hit=1

# 4b. The harness itself: a failing command, a panic, an oops and a timeout
# in a guest must each be reported as what they are (selftest.sh).
self_rc=0
rem=$(left)
if (( rem > 30 )); then
  timeout -k 10 "$rem" "$here/selftest.sh" "${kernels[0]}" >"$logs/selftest.out" 2>&1 || self_rc=$?
else
  self_rc=124
  echo "no time left of the ${budget}s budget" >"$logs/selftest.out"
fi

# 5. Verdict per kernel.
declare -A res=() note=() counts=()
if [[ -s $results ]]; then
  while IFS='|' read -r k ver r p f s secs n; do
    res[$k]=$r; note[$k]=$n; counts[$k]="$p passed, $f failed, $s skipped, ${secs}s, $ver"
  done <"$results"
fi
bad=0
echo
for k in "${kernels[@]}"; do
  r=${res[$k]:-}
  x=${xfail[$k]:-}
  if [[ -z $r ]]; then
    say "FAIL   $k: no result ($([[ $budget_hit = 1 ]] && echo "the ${budget}s budget ran out" || echo "run-tests.sh exit $rc"))"; bad=1
  elif [[ $r == PASS && -z $x ]]; then
    say "ok     $k: ${counts[$k]}"
  elif [[ $r == PASS ]]; then
    say "XPASS  $k: ${counts[$k]}; listed in vmtest/expected-failures.txt ($x): delete that line"; bad=1
  elif [[ $r == FAIL && -n $x ]]; then
    say "xfail  $k: ${counts[$k]}; expected: $x"
  else
    say "FAIL   $k: $r, ${counts[$k]}${note[$k]:+; ${note[$k]}}"; bad=1
  fi
done
for k in "${!xfail[@]}"; do
  [[ " ${kernels[*]} " == *" $k "* ]] || say "note: $k is in expected-failures.txt but was not run"
done
if (( self_rc == 0 )); then
  say "ok     harness selftest on ${kernels[0]}: $(tail -n 1 "$logs/selftest.out")"
else
  say "FAIL   harness selftest on ${kernels[0]} (exit $self_rc):"
  sed 's/^/    /' "$logs/selftest.out" | head -n 20
  bad=1
fi
# Why, for each unexpected failure: the failing test cases and assertions.
for k in "${kernels[@]}"; do
  [[ ${res[$k]:-} == FAIL && -z ${xfail[$k]:-} ]] || continue
  out=$logs/${k//[^A-Za-z0-9._-]/_}.out
  [[ -f $out ]] || continue
  echo "----- $k: failures"
  grep -aE '^(FAIL |NOTE: |preflight: )|: failed' "$out" | cut -c1-400 | head -n 40 || true
done
say "done in $(( $(date +%s) - t_start ))s (budget ${budget}s)"
if (( bad )); then
  say "FAILED; logs kept in $logs"
  exit 1
fi
[[ $keep_logs = 1 ]] || rm -rf "$logs"
exit 0
