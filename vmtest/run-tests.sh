#!/usr/bin/env bash
# run-tests.sh - run memtop's runtime tests (build/tests/runtime/runtime_tests,
# Catch2) inside a VM for each kernel and print the matrix table.
#
# Usage:
#   vmtest/run-tests.sh [options] [KERNEL...] [-- CATCH2-TEST-SPEC...]
#
#   KERNEL      as for vmtest/run-vm.sh (default: 5.10 6.1 6.12 7, or
#               $MEMTOP_VMTEST_KERNELS)
#   TEST-SPEC   passed to runtime_tests, e.g. '[sites][cmd],[threads]'
#               (default: every test case but the live screen's and
#               the host-tool ones, and the user-space-only ones listed
#               below: '~[tui]~[host]~[corrupt]~[hostile]~[sort]~[moments]~[record]~[files]~[footprint]~[debuginfo]~[privsep]~[cli]~[preload]~[age]~[jit]~[lines]~[deleted]~[namespace]~[follow]~[fallback]~[compat],*--sample 65536 in-process: every site*')
#
# Options:
#   --build DIR       the build tree (default $MEMTOP_BUILD or ./build)
#   -j N              VMs side by side (default 2, 1 CPU each)
#   --timeout SEC     limit per VM (default 300)
#   --logs DIR        keep each kernel's output and console log in DIR
#   --results FILE    one line per kernel (see vmtest/matrix.sh --results)
#   --append ARGS     extra kernel command line (e.g. preempt=full)
#   -v                print each kernel's whole output
#
# The guest gets, at the same absolute paths as on this host: memtop,
# runtime_tests, the test programs and the program sources (both named by
# paths compiled into runtime_tests), their shared libraries, this
# directory's guest-runtime-tests.sh, and the host tools the tests call
# (/bin/sh = dash, bpftool, strip, setpriv; $MEMTOP_VMTEST_TOOLS overrides).
# Inside, guest-runtime-tests.sh checks that memtop loads (its one-line
# error is shown in the NOTE column if not), then runs runtime_tests with
# CI=true and prints one line per test case and the counts.
#
# Exit status: that of vmtest/matrix.sh (1 if any kernel had a failure).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/kernels.sh"

build=${MEMTOP_BUILD:-$repo/build}
mopts=() timeout_s=300 kernels=() spec=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2; shift ;;
    -j) mopts+=(-j "$2"); shift ;;
    --timeout) timeout_s=$2; shift ;;
    --logs|--results|--append) mopts+=("$1" "$2"); shift ;;
    -v) mopts+=(-v) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; spec=("$@"); break ;;
    -*) echo "run-tests: unknown option $1" >&2; exit 2 ;;
    *) kernels+=("$1") ;;
  esac
  shift
done
# Tests of host-only tools ([host]: prometheus, ...) and the live screen's
# ([tui]) do not run here. The screen's drive memtop in tmux, which the guest has
# not (nor devpts, nor terminfo); the screen is user space only, and the
# host's suite runs them. So does it the [host] tests, which need tools the
# guest lacks (go tool pprof, ...). Nor do the tests whose kernel side is a
# plain `-- CMD` that the [sites] tests already run on every kernel and whose
# assertions are on user-space parsing and aggregation only: corrupt ELF files
# ([corrupt]), hostile perf maps ([hostile]), --sort views ([sort]),
# recordings and what reads them back ([record], [moments]), output files
# refusing planted symlinks ([files]), glibc's chunk footprint per stack
# ([footprint]) and split debug info ([debuginfo]); nor the parsing
# workers' confinement and failures ([privsep]), argument and message
# checks ([cli]), the in-process sampler ([preload]; its compat-build run
# stays), --min-age ([age]), perf maps ([jit]), --lines ([lines]), deleted
# and namespaced binaries' naming ([deleted], [namespace]), -f's ptrace
# ([follow]), and the single cases tagged [host] for the same reason; the
# host's suite runs them all. Under TCG each costs 5-20 s per kernel, four
# times a CI run. A TEST-SPEC given after -- is used as it is.
[[ ${#spec[@]} -gt 0 ]] || spec=('~[tui]~[host]~[corrupt]~[hostile]~[sort]~[moments]~[record]~[files]~[footprint]~[debuginfo]~[privsep]~[cli]~[preload]~[age]~[jit]~[lines]~[deleted]~[namespace]~[follow]~[fallback]~[compat],*--sample 65536 in-process: every site*')
[[ ${#kernels[@]} -gt 0 ]] || read -r -a kernels <<<"${MEMTOP_VMTEST_KERNELS:-$MEMTOP_KERNELS_DEFAULT}"
die() { echo "run-tests: error: $*" >&2; exit 2; }

build=$(cd "$build" 2>/dev/null && pwd) || die "no build directory (run tools/build.sh)"
rt=$build/tests/runtime/runtime_tests
[[ -x $rt ]] || die "$rt not built (run tools/build.sh)"

# The paths runtime_tests was compiled with (tests/runtime/CMakeLists.txt):
# MEMTOP_PATH, MEMTOP_TEST_PROGS ("name=path|..."), PROGS_SRC_DIR.
strs=$(strings -n 6 "$rt")
memtop=${MEMTOP_BIN:-}
if [[ -z $memtop ]]; then
  while IFS= read -r c; do
    [[ -f $c && -x $c ]] && { memtop=$c; break; }
  done < <(grep -E '^/[^ ]*/memtop$' <<<"$strs")
fi
[[ -n $memtop && -x $memtop ]] || die "memtop binary not found (compiled-in path '${memtop}'; set MEMTOP_BIN)"
progmap=$(grep -m1 -E '^[A-Za-z0-9_]+=/[^|]+(\|[A-Za-z0-9_]+=/[^|]+)*$' <<<"$strs" || true)
[[ -n $progmap ]] || die "no test program map (MEMTOP_TEST_PROGS) found in $rt"
srcdir=
while IFS= read -r d; do
  [[ -d $d && -e $d/expect.h ]] && { srcdir=$d; break; }
done < <(grep -E '^/[^ ]*progs$' <<<"$strs")
[[ -n $srcdir ]] || die "test program sources (PROGS_SRC_DIR, with expect.h) not found"

adds=(--add "$memtop" --add "$rt" --add "$srcdir" --add "$here/guest-runtime-tests.sh")
# The sampler memtop preloads for `--sample N -- CMD` lives beside it
# (user/app/sampler_preload.cpp); without it memtop samples in its probes
# and the in-process tests fail.
# And the Python-only one (--python-objects -- CMD by default).
for lib in libmemtop_sampler.so libmemtop_pysampler.so; do
  sampler=$(dirname "$memtop")/$lib
  [[ -f $sampler ]] && adds+=(--add "$sampler")
done
IFS='|' read -r -a pairs <<<"$progmap"
for pr in "${pairs[@]}"; do
  p=${pr#*=}
  [[ -x $p ]] || die "test program ${pr%%=*} not built: $p"
  adds+=(--add "$p")
done
# Host tools the tests run; /bin/sh replaces busybox's static sh (memtop
# refuses static binaries without allocator symbols, and `memtop -- sh -c`
# is one of the tests). binutils for the split-debug test, util-linux's
# unshare for the namespace tests (busybox's lacks --kill-child).
read -r -a tools <<<"${MEMTOP_VMTEST_TOOLS:-/bin/sh /usr/sbin/bpftool /usr/bin/strip /usr/bin/setpriv /usr/bin/readelf /usr/bin/objcopy /usr/bin/unshare}"
for t in "${tools[@]}"; do
  if [[ -e $t ]]; then adds+=(--add "$t"); else echo "run-tests: warning: $t not on this host, the guest uses busybox's" >&2; fi
done

echo "run-tests: kernels ${kernels[*]}; runtime_tests ${spec[*]:-(all test cases)}; timeout ${timeout_s}s per VM" >&2
exec "$here/matrix.sh" --kernels "${kernels[*]}" --timeout "$timeout_s" "${mopts[@]}" "${adds[@]}" \
  -- sh "$here/guest-runtime-tests.sh" "$memtop" "$rt" "${spec[@]}"
