#!/usr/bin/env bash
# matrix.sh - run one command on every kernel of the matrix (one VM each,
# via vmtest/run-vm.sh) and print a table of the results.
#
# Usage:
#   vmtest/matrix.sh [options] -- CMD [ARG...]
#
# Options:
#   --kernels "LIST"  kernels to use (default "5.10 6.1 6.12 7", or
#                     $MEMTOP_VMTEST_KERNELS); entries as run-vm.sh KERNEL
#   -j N              VMs run side by side (default 2; each has 1 CPU)
#   --timeout SEC     limit per VM (default 120)
#   --add PATH        passed to run-vm.sh (repeatable)
#   --append ARGS     extra kernel command line for every VM
#   --logs DIR        keep per-kernel output and console logs in DIR
#                     (default: a temporary directory, removed at exit)
#   --results FILE    also write one line per kernel to FILE:
#                     KERNEL|VERSION|RESULT|PASSED|FAILED|SKIPPED|SECONDS|NOTE
#                     (RESULT is PASS, FAIL or SKIPPED)
#   -v                print each kernel's command output as it finishes
#
# How a kernel's run is counted:
#   - output with a closing line "N passed, N failed[, N skipped]" (optionally
#     preceded by one word and a colon) or ctest's "N% tests passed, N tests
#     failed out of M": those counts;
#   - otherwise the command is one test: exit 0 passed, exit 77 skipped,
#     anything else failed;
#   - a guest panic/oops (125), timeout (124) or a guest that did not boot
#     (123) adds a failure;
#   - a kernel whose package cannot be fetched is skipped, with the reason.
#   Lines "SKIP: reason" / "SKIPPED: reason" in the output, and ctest's
#   "(Skipped)"/"(Not Run)" lines, give the skip reasons shown in the table.
#   Lines "NOTE: text" in the output are shown in the NOTE column too.
#
# Exit status 0 when nothing failed, 1 otherwise.  The last line is
# "matrix: N passed, N failed, N skipped" summed over all kernels.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/kernels.sh"

kernels=${MEMTOP_VMTEST_KERNELS:-$MEMTOP_KERNELS_DEFAULT}
njobs=2 timeout_s=120 logs='' verbose=0 results=''
pass=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --kernels) kernels=$2; shift ;;
    -j) njobs=$2; shift ;;
    --timeout) timeout_s=$2; shift ;;
    --add) pass+=(--add "$2"); shift ;;
    --append) pass+=(--append "$2"); shift ;;
    --logs) logs=$2; shift ;;
    --results) results=$2; shift ;;
    -v) verbose=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) echo "matrix: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $# -ge 1 ]] || { echo "usage: $0 [--kernels LIST] [-j N] [--timeout SEC] [--add PATH]... -- CMD [ARG...]" >&2; exit 2; }

if [[ -n $logs ]]; then mkdir -p "$logs"; keep_logs=1; else logs=$(mktemp -d "${TMPDIR:-/tmp}/memtop-matrix.XXXXXX"); keep_logs=0; fi
children=()
cleanup() {
  local p
  for p in "${children[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ $keep_logs = 1 ]] || rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_all=$(date +%s.%N)
read -r -a klist <<<"$kernels"

# 1. Fetch every kernel first (cached after the first time), one at a time,
#    so that the VMs below do no network I/O.
declare -A skip_reason
for k in "${klist[@]}"; do
  key=${k//[^A-Za-z0-9._-]/_}
  if [[ -e $k ]]; then continue; fi
  if ! kernel_spec "$k" >/dev/null; then skip_reason[$k]="unknown kernel alias"; continue; fi
  if ! fetch_kernel "$k" >"$logs/$key.fetch" 2>&1; then
    skip_reason[$k]="package unavailable: $(grep -m1 'error' "$logs/$key.fetch" || tail -n1 "$logs/$key.fetch")"
  fi
  grep -a '^kernel-note: ' "$logs/$key.fetch" | sed 's/^kernel-note: /matrix: note: /' >&2 || true
done

# 2a. The accelerator, decided once for every VM of the run (run-vm.sh
#     probes KVM with a tiny boot; a KVM that never reaches /init means TCG).
if [[ -z ${MEMTOP_VMTEST_ACCEL:-} ]]; then
  for k in "${klist[@]}"; do
    [[ -n ${skip_reason[$k]:-} ]] && continue
    MEMTOP_VMTEST_ACCEL=$("$here/run-vm.sh" --probe-accel "$k") || MEMTOP_VMTEST_ACCEL=tcg
    break
  done
  export MEMTOP_VMTEST_ACCEL
fi

# 2. Run the VMs, $njobs at a time.
run_one() {
  local k=$1 key=$2 t0 t1 rc=0; shift 2
  t0=$(date +%s.%N)
  "$here/run-vm.sh" --timeout "$timeout_s" --console "$logs/$key.console" "${pass[@]}" "$k" -- "$@" \
    >"$logs/$key.out" 2>"$logs/$key.err" || rc=$?
  t1=$(date +%s.%N)
  echo "$rc" >"$logs/$key.rc"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' >"$logs/$key.time"
}
# Longest first: under TCG the newer kernels take longest (CI: 7.x ~460 s,
# 6.1/6.12 ~350 s, 5.10 ~200 s), and a long VM started last would run alone
# at the end. Newest first (the list is oldest first): by CI's per-VM times
# the matrix takes ~700 s instead of ~825 s at -j 2. Tables keep the list order.
order=()
for ((i = ${#klist[@]} - 1; i >= 0; i--)); do order+=("${klist[i]}"); done
for k in "${order[@]}"; do
  key=${k//[^A-Za-z0-9._-]/_}
  [[ -n ${skip_reason[$k]:-} ]] && continue
  while (( $(jobs -rp | wc -l) >= njobs )); do wait -n || true; done
  run_one "$k" "$key" "$@" &
  children+=($!)
done
wait || true
children=()

# 3. Count and tabulate.
tp=0 tf=0 ts=0
rows=() rrows=()
for k in "${klist[@]}"; do
  key=${k//[^A-Za-z0-9._-]/_}
  if [[ -n ${skip_reason[$k]:-} ]]; then
    rows+=("$k|-|SKIPPED|0|0|1|-|${skip_reason[$k]}")
    rrows+=("$k|-|SKIPPED|0|0|1|-|${skip_reason[$k]}")
    ts=$((ts + 1)); continue
  fi
  rc=$(cat "$logs/$key.rc" 2>/dev/null || echo 125)
  out=$logs/$key.out err=$logs/$key.err
  kver=$(sed -n 's/^run-vm: booting \([^ ]*\) .*/\1/p' "$err" | head -n1 || true)
  boot=$(sed -n 's/.* boot-to-cmd \([0-9.]*\)s.*/\1/p' "$err" | head -n1 || true)
  p=0 f=0 s=0 note=
  line=$(grep -aE '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?[[:space:]]*$' "$out" | tail -n1 || true)
  ctl=$(grep -aE '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" | tail -n1 || true)
  if [[ -n $line ]]; then
    p=$(sed -E 's/.*\b([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.*\b([0-9]+) failed.*/\1/' <<<"$line")
    [[ $line == *skipped* ]] && s=$(sed -E 's/.*\b([0-9]+) skipped.*/\1/' <<<"$line")
  elif [[ -n $ctl ]]; then
    f=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$ctl")
    total=$(sed -E 's/.*failed out of ([0-9]+).*/\1/' <<<"$ctl")
    s=$(grep -acE '\((Skipped|Not Run|Disabled)\)' "$out" || true)
    p=$(( total - f - s )); (( p >= 0 )) || p=0
  else
    case $rc in
      0) p=1 ;;
      77) s=1; note="exit 77" ;;
      123|124|125) ;;
      *) f=1; note="exit $rc" ;;
    esac
  fi
  case $rc in
    123) f=$((f + 1)); note="DID NOT BOOT: $(grep -m1 -o 'FAIL: did not boot: .*' "$err" | sed 's/^FAIL: did not boot: //' | cut -c1-90)" ;;
    124) f=$((f + 1)); note="TIMEOUT after ${timeout_s}s" ;;
    125) f=$((f + 1)); note=$(grep -m1 -o 'FAIL: .*' "$err" | sed 's/^FAIL: //; s/^guest kernel panic\/oops on [^:]*: /PANIC: /; s/^timeout after [0-9]*s on [^ ]* /TIMEOUT /' | cut -c1-100) ;;
  esac
  reasons=$(grep -aoE '^(SKIP|SKIPPED): .*|\((Skipped|Not Run|Disabled)\).*' "$out" | sed -E 's/^(SKIP|SKIPPED): //' | sort | uniq -c | sort -rn | head -n3 \
            | awk '{ c=$1; $1=""; sub(/^ /, ""); printf "%s%s (x%d)", (NR>1 ? "; " : ""), $0, c }' || true)
  [[ -n $reasons ]] && note="${note:+$note; }skipped: $reasons"
  notes=$(grep -aoE '^NOTE: .*' "$out" | sed -E 's/^NOTE: //; s/[|]/\//g' | awk '!seen[$0]++' | head -n3 | awk '{ printf "%s%s", (n++ ? "; " : ""), $0 }' || true)
  [[ -n $notes ]] && note="${note:+$note; }$notes"
  kn=$(grep -a '^kernel-note: ' "$logs/$key.fetch" 2>/dev/null | sed 's/^kernel-note: [^:]*: //; s/[|]/\//g' | head -n1 || true)
  [[ -n $kn ]] && note="${note:+$note; }$kn"
  if (( f > 0 )); then res=FAIL; elif (( p > 0 )); then res=PASS; else res=SKIPPED; fi
  tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
  rows+=("$k|${kver:--}|$res|$p|$f|$s|$(cat "$logs/$key.time")s (boot $([[ -n $boot ]] && echo "${boot}s" || echo -))|${note}")
  rrows+=("$k|${kver:--}|$res|$p|$f|$s|$(cat "$logs/$key.time")|${note}")
  if [[ $verbose = 1 ]]; then
    echo "----- $k ($kver) exit $rc -----"; cat "$out"; grep -v '^run-vm: booting' "$err" || true
  fi
done

[[ -z $results ]] || printf '%s\n' "${rrows[@]}" >"$results"
wall=$(awk -v a="$t_all" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo
{
  echo "KERNEL|VERSION|RESULT|PASSED|FAILED|SKIPPED|TIME|NOTE"
  printf '%s\n' "${rows[@]}"
} | awk -F'|' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; if (NF > nf) nf = NF }
        END { for (r = 1; r <= n; r++) { line = ""; for (i = 1; i <= nf; i++) line = line sprintf(i < nf ? "%-" w[i] "s  " : "%s", c[r, i]); print line } }'
echo
echo "matrix wall time ${wall}s, -j $njobs, logs: $([[ $keep_logs = 1 ]] && echo "$logs" || echo "not kept (use --logs DIR)")"
echo "matrix: $tp passed, $tf failed, $ts skipped"
(( tf == 0 ))
