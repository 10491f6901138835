#!/usr/bin/env bash
# run-vm.sh - run one command inside a throw-away VM booted from a Debian
# kernel package, and return its output and exit code.
#
# Usage:
#   vmtest/run-vm.sh [options] KERNEL -- CMD [ARG...]
#
# KERNEL is one of
#   5.10 | 6.1 | 6.12 | 7       a kernel of the matrix (see vmtest/kernels.sh),
#                               fetched with tools/fetch-kernel-pkg.sh
#   SUITE:PACKAGE               e.g. bookworm:linux-image-amd64 (metapackages
#                               are followed to the real image)
#   DIR                         an unpacked kernel package (boot/vmlinuz-* or
#                               usr/lib/modules/*/vmlinuz inside)
#   FILE                        a bzImage
#
# The guest is a busybox initramfs built per run: /init mounts proc, sys,
# devtmpfs, debugfs, tracefs, bpffs, cgroup2, tmpfs /tmp (unless --add put files there), raises
# RLIMIT_MEMLOCK, runs CMD (cwd /, as root) with stdout+stderr on a second
# serial port, prints a marker with CMD's exit status, then powers off.
#
# Options:
#   --add PATH       copy PATH (file or directory) into the guest at the same
#                    absolute path; for ELF files also their `ldd` closure.
#                    Repeatable.
#   --timeout SEC    wall-clock limit for the whole VM run (default 120)
#   --append ARGS    extra kernel command line
#   --smp N          guest CPUs (default 1; under TCG two 1-CPU VMs side by
#                    side beat one 2-CPU VM)
#   --mem MB         guest memory (default 1024: memtop's BPF maps take ~100 MB, and 7.x
#                    guests ran out of 512)
#   --boot-timeout SEC  the guest must reach /init within SEC (default 90,
#                    $MEMTOP_VMTEST_BOOT_TIMEOUT), else it "did not boot"
#   --qemu-arg ARG   one more QEMU argument (repeatable)
#   --probe-accel    print the accelerator this host can use (kvm or tcg,
#                    after a probe boot of KERNEL when /dev/kvm exists) and
#                    exit; CMD is not needed
#   --console FILE   keep the guest's console log in FILE
#   --keep           keep the work directory (initramfs, logs)
#   --no-pvh         boot the bzImage itself, not its ELF vmlinux via PVH
#   -v               stream the guest console to stderr while it runs
#   -q               no harness messages on stderr except errors
#
# Accelerator: KVM only where it is seen to work. /dev/kvm can exist and
# still never get a guest past the firmware (nested virtualisation on the
# project's machines: the console stops at SeaBIOS "Booting from ROM.."), so
# before the first KVM boot a tiny probe boot of the same kernel must reach
# /init within $MEMTOP_VMTEST_PROBE_TIMEOUT seconds (default 20); if it does
# not, run-vm says once "kvm present but not usable here" and uses TCG.
# MEMTOP_VMTEST_ACCEL=kvm|tcg skips the probe (matrix.sh and ci.sh probe
# once and set it for every VM of the run). MEMTOP_VMTEST_KVM_PROBE replaces
# the probe's QEMU accelerator arguments (default "-accel kvm -cpu host") and
# forces the probe even without /dev/kvm: selftest.sh plays a broken KVM
# with it.
#
# Exit status: CMD's exit status; 124 timeout; 123 the guest did not boot
# (no /init within --boot-timeout); 125 the guest kernel panicked/oopsed or
# died without reporting a status; 2 usage or setup error.
# CMD's output is written to stdout; harness messages go to stderr, prefixed
# "run-vm:".
set -euo pipefail

prog=run-vm
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

pvh=1 timeout_s=120 append='' smp=1 mem=1024 console_keep='' keep=0 verbose=0 quiet=0
boot_timeout=${MEMTOP_VMTEST_BOOT_TIMEOUT:-90} probe_only=0
adds=() qemu_extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --add) adds+=("$2"); shift ;;
    --timeout) timeout_s=$2; shift ;;
    --boot-timeout) boot_timeout=$2; shift ;;
    --qemu-arg) qemu_extra+=("$2"); shift ;;
    --probe-accel) probe_only=1 ;;
    --append) append+=" $2"; shift ;;
    --smp) smp=$2; shift ;;
    --mem) mem=$2; shift ;;
    --console) console_keep=$2; shift ;;
    --keep) keep=1 ;;
    --no-pvh) pvh=0 ;;
    -v) verbose=1 ;;
    -q) quiet=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) echo "$prog: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
usage() { echo "usage: $0 [--add PATH]... [--timeout SEC] [--append ARGS] KERNEL -- CMD [ARG...]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
kernel_arg=$1; shift
[[ ${1:-} == -- ]] && shift
[[ $# -ge 1 || $probe_only = 1 ]] || usage
[[ $timeout_s =~ ^[0-9]+$ ]] || { echo "$prog: --timeout needs seconds" >&2; exit 2; }
[[ $boot_timeout =~ ^[0-9]+$ ]] || { echo "$prog: --boot-timeout needs seconds" >&2; exit 2; }

log() { [[ $quiet = 1 ]] || echo "$prog: $*" >&2; }
err() { echo "$prog: $*" >&2; }
setup_fail() { err "error: $*"; exit 2; }

for t in qemu-system-x86_64 cpio; do
  command -v "$t" >/dev/null || setup_fail "$t not found (apt-get install \$(cat tools/deps-vmtest.txt))"
done
busybox=${MEMTOP_BUSYBOX:-/bin/busybox}
if ! [[ -x $busybox ]] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  # fall back to the busybox-static package's known path
  [[ -x /usr/bin/busybox ]] && busybox=/usr/bin/busybox
  ldd "$busybox" >/dev/null 2>&1 && setup_fail "$busybox is not static (apt-get install busybox-static)"
fi

# --- locate the kernel -----------------------------------------------------
. "$here/kernels.sh"
find_vmlinuz() {  # DIR -> path of the bzImage inside an unpacked package
  ls -1 "$1"/boot/vmlinuz-* "$1"/usr/lib/modules/*/vmlinuz 2>/dev/null | head -n1 || true
}
if [[ -d $kernel_arg ]]; then
  vmlinuz=$(find_vmlinuz "$kernel_arg")
elif [[ -f $kernel_arg ]]; then
  vmlinuz=$kernel_arg
else
  spec=$(kernel_spec "$kernel_arg") || setup_fail "unknown kernel '$kernel_arg' (use $(kernel_aliases | tr '\n' ' ')| SUITE:PACKAGE | DIR | FILE)"
  kdir=$(fetch_kernel "$kernel_arg" 2> >(sed -u "s/^kernel-note: /$prog: note: /" >&2)) \
    || setup_fail "could not fetch kernel package ${spec#*:} from ${spec%%:*}"
  vmlinuz=$(find_vmlinuz "$kdir")
fi
[[ -n ${vmlinuz:-} && -r $vmlinuz ]] || setup_fail "no kernel image found for '$kernel_arg'"
case $vmlinuz in  # kernel release, from the package layout
  */boot/vmlinuz-*) krel=${vmlinuz##*/vmlinuz-} ;;
  */modules/*/vmlinuz) krel=${vmlinuz%/vmlinuz}; krel=${krel##*/} ;;
  *) krel=${vmlinuz##*/} ;;
esac

# Boot the decompressed ELF through PVH when the kernel supports it
# (CONFIG_PVH: an XEN_ELFNOTE_PHYS32_ENTRY note): under TCG that saves the
# ~3 s the bzImage stub spends decompressing itself.  Cached per image.
boot_image=$vmlinuz
if [[ $pvh = 1 ]] && command -v readelf >/dev/null; then
  kcache=${MEMTOP_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memtop/kernels}/vmlinux
  elf=$kcache/$(basename "$vmlinuz")-$(stat -c %s-%Y "$vmlinuz")
  if [[ ! -e $elf && ! -e $elf.nopvh ]]; then
    mkdir -p "$kcache"
    if "$here/extract-vmlinux.sh" "$vmlinuz" "$elf" 2>/dev/null; then
      if ! readelf -n "$elf" 2>/dev/null | grep -qE 'Xen[[:space:]]+0x[0-9a-f]+[[:space:]]+.*\(0x00000012\)'; then
        rm -f "$elf"; : >"$elf.nopvh"
      fi
    else
      : >"$elf.nopvh"
    fi
  fi
  [[ -e $elf ]] && boot_image=$elf
fi

# --- work directory ----------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/memtop-vmtest.XXXXXX")
qpid=
cleanup() {
  [[ -n $qpid ]] && kill "$qpid" 2>/dev/null || true
  if [[ $keep = 1 ]]; then log "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- accelerator -------------------------------------------------------------
# A probe boot: the kernel with an initramfs whose /init only prints a
# marker. Exit 0 when it reached /init under the given accelerator in time.
probe_boot() {  # SECONDS QEMU-ACCEL-ARGS...
  local secs=$1 d=$work/probe pid t=0; shift
  mkdir -p "$d/root/bin"
  cp "$busybox" "$d/root/bin/busybox"
  printf '#!/bin/busybox sh\n/bin/busybox echo MEMTOP-PROBE-INIT\n/bin/busybox poweroff -f\n' >"$d/root/init"
  chmod +x "$d/root/init"
  (cd "$d/root" && find . -print0 | cpio --null -o -H newc --quiet) >"$d/initrd.cpio"
  : >"$d/console.log"
  qemu-system-x86_64 "$@" -m 256 -smp 1 -kernel "$boot_image" -initrd "$d/initrd.cpio" \
    -append "console=ttyS0 panic=-1 rdinit=/init loglevel=1" -nographic -no-reboot -monitor none \
    -nic none -display none -serial "file:$d/console.log" </dev/null >"$d/qemu.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null && (( t < secs * 5 )); do
    grep -aq MEMTOP-PROBE-INIT "$d/console.log" && break
    sleep 0.2; t=$((t + 1))
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -aq MEMTOP-PROBE-INIT "$d/console.log" && return 0
  probe_why=$( (grep -av '^$' "$d/qemu.log"; tr -d '\r' <"$d/console.log" | grep -a . ) | tail -n 1 | cut -c1-120)
  return 1
}
tcg=(-accel 'tcg,thread=multi' -cpu max)
case ${MEMTOP_VMTEST_ACCEL:-} in
  kvm) accel=(-accel kvm -cpu host) ;;
  tcg) accel=("${tcg[@]}") ;;
  '')
    read -r -a kvm_probe <<<"${MEMTOP_VMTEST_KVM_PROBE:--accel kvm -cpu host}"
    if [[ -n ${MEMTOP_VMTEST_KVM_PROBE:-} ]] || [[ -r /dev/kvm && -w /dev/kvm ]]; then
      probe_s=${MEMTOP_VMTEST_PROBE_TIMEOUT:-20} probe_why=
      if probe_boot "$probe_s" "${kvm_probe[@]}"; then
        accel=("${kvm_probe[@]}")
      else
        err "kvm present but not usable here: using TCG (a probe boot of $krel did not reach /init in ${probe_s}s${probe_why:+; last output: $probe_why})"
        accel=("${tcg[@]}")
      fi
    else
      accel=("${tcg[@]}")
    fi ;;
  *) setup_fail "MEMTOP_VMTEST_ACCEL=${MEMTOP_VMTEST_ACCEL}: use kvm or tcg" ;;
esac
if [[ $probe_only = 1 ]]; then
  [[ ${accel[1]} == kvm* ]] && echo kvm || echo tcg
  exit 0
fi

# --- build the initramfs -----------------------------------------------------
root=$work/root
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,proc,sys,dev,tmp,run,root,etc,mnt}
ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
cp "$busybox" "$root/usr/bin/busybox"

# Copy a host file to the same path in the guest (parent directories are
# canonicalised, so /lib/... and /usr/lib/... both land under /usr/lib).
declare -A copied=()
copy_in() {
  local src=$1 dst_parent
  [[ -n ${copied[$src]:-} ]] && return 0
  copied[$src]=1
  dst_parent=${src%/*}
  [[ $src == */* ]] || dst_parent=.
  dst_parent=$(realpath -m "${dst_parent:-/}")
  [[ -e $root$dst_parent/${src##*/} ]] && return 0
  mkdir -p "$root$dst_parent"
  cp -L --preserve=mode "$src" "$root$dst_parent/"
}
declare -A closed=()
copy_closure() {  # ELF -> its ldd closure
  local f=$1 lib
  [[ -n ${closed[$f]:-} ]] && return 0
  closed[$f]=1
  file -L "$f" 2>/dev/null | grep -q 'ELF.*dynamically linked' || return 0
  while read -r lib; do
    [[ -n $lib && -e $lib ]] && copy_in "$lib"
  done < <(ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+ \(/ { print $1 }')
}
add_path() {
  local p
  p=$(realpath -s "$1" 2>/dev/null || echo "$1")
  [[ -e $p ]] || setup_fail "--add $1: no such file or directory"
  if [[ -d $p ]]; then
    local f
    mkdir -p "$root$(realpath -m "$p")"
    cp -a "$p/." "$root$(realpath -m "$p")/"
    while IFS= read -r -d '' f; do copy_closure "$f"; done < <(find "$p" -type f -perm -u+x -print0)
  else
    copy_in "$p"
    copy_closure "$p"
  fi
}
for a in "${adds[@]}"; do add_path "$a"; done

# The command, quoted for the guest shell (busybox ash understands $'..').
{
  echo '#!/bin/sh'
  printf 'exec'; printf ' %q' "$@"; echo
} >"$root/memtop-cmd"
chmod +x "$root/memtop-cmd"

marker=MEMTOP-VMTEST
cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -n "\$(ls -A /tmp)" ] || mount -t tmpfs tmpfs /tmp   # not over files added under /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /sys/fs/bpf /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ulimit -l unlimited 2>/dev/null
echo 1 >/proc/sys/kernel/panic_on_oops 2>/dev/null
btf=no; [ -e /sys/kernel/btf/vmlinux ] && btf=yes
echo "$marker-START: kernel=\$(uname -r) btf=\$btf uptime=\$(cut -d' ' -f1 /proc/uptime)"
out=/dev/ttyS1
[ -c \$out ] || out=/dev/console
stty -F \$out raw -echo 2>/dev/null
cd /
/memtop-cmd >\$out 2>&1 </dev/null
rc=\$?
echo "$marker-EXIT: rc=\$rc uptime=\$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$work/initrd.cpio"

# --- boot ----------------------------------------------------------------
console=$work/console.log out=$work/out.log
: >"$console"; : >"$out"
cmdline="console=ttyS0 panic=-1 oops=panic reboot=t rdinit=/init loglevel=4 nokaslr tsc=reliable$append"
log "booting $krel$([[ $boot_image != "$vmlinuz" ]] && echo ' (ELF, PVH)') with ${accel[*]:1:1}, timeout ${timeout_s}s (boot ${boot_timeout}s)"
t0=$(date +%s.%N)
qemu-system-x86_64 "${accel[@]}" -m "$mem" -smp "$smp" \
  -kernel "$boot_image" -initrd "$work/initrd.cpio" -append "$cmdline" \
  -nographic -no-reboot -monitor none -nic none -display none \
  -serial "file:$console" -serial "file:$out" "${qemu_extra[@]}" \
  </dev/null >"$work/qemu.log" 2>&1 &
qpid=$!
if [[ $verbose = 1 ]]; then
  tail -n +1 -f --pid="$qpid" "$console" >&2 &
fi
stop_qemu() { kill "$qpid" 2>/dev/null || true; sleep 0.5; kill -9 "$qpid" 2>/dev/null || true; }
# Two deadlines: the guest must reach /init (its start marker) within
# --boot-timeout, so a kernel or accelerator that never boots fails in
# seconds as "did not boot", not as a command timeout minutes later.
timed_out=0 no_boot=0 booted=0
now_s=$(date +%s)
deadline=$(( now_s + timeout_s )) boot_deadline=$(( now_s + boot_timeout ))
while kill -0 "$qpid" 2>/dev/null; do
  now_s=$(date +%s)
  if (( booted == 0 )) && grep -aq "$marker-START:" "$console"; then booted=1; fi
  if (( booted == 0 && now_s >= boot_deadline )); then
    no_boot=1; stop_qemu; break
  fi
  if (( now_s >= deadline )); then
    timed_out=1; stop_qemu; break
  fi
  sleep 0.2
done
qrc=0; wait "$qpid" 2>/dev/null || qrc=$?
qpid=
t1=$(date +%s.%N)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
[[ -n $console_keep ]] && cp "$console" "$console_keep"

# --- verdict ---------------------------------------------------------------
cat "$out"
con=$(tr -d '\r' <"$console")
start=$(grep -a -o -m1 "$marker-START:.*" <<<"$con" || true)
exitl=$(grep -a -o -m1 "$marker-EXIT:.*" <<<"$con" || true)
bad=$(grep -a -o -m3 -E '(Kernel panic|Oops|BUG: |general protection fault|Unable to handle kernel|kernel BUG at|watchdog: BUG: soft lockup|rcu_sched self-detected stall).*' <<<"$con" || true)
warn=$(grep -a -o -m3 -E 'WARNING: CPU: .*' <<<"$con" || true)
tail_console() { err "last console lines:"; tail -n 25 <<<"$con" | sed 's/^/  | /' >&2; }

kver=$(sed -n 's/.*kernel=\([^ ]*\).*/\1/p' <<<"$start")
boot=$(sed -n 's/.*uptime=\([0-9.]*\).*/\1/p' <<<"$start")
[[ -n $warn ]] && err "guest kernel warning: $(head -n1 <<<"$warn")"
if [[ -n $bad ]]; then
  err "FAIL: guest kernel panic/oops on ${kver:-$krel}: $(head -n1 <<<"$bad")"
  tail_console; exit 125
fi
if [[ $no_boot = 1 && -z $start ]]; then
  # Kernel messages carry printk's timestamp; the firmware's do not.
  if grep -aqE '^\[ *[0-9]+\.[0-9]+\]' <<<"$con"; then
    err "FAIL: did not boot: $krel started but did not reach /init in ${boot_timeout}s"
  else
    err "FAIL: did not boot: nothing from $krel past the firmware in ${boot_timeout}s (accelerator ${accel[*]:1:1})"
  fi
  tail_console; exit 123
fi
if [[ $timed_out = 1 ]]; then
  err "FAIL: timeout after ${timeout_s}s on ${kver:-$krel} ($([[ -n $start ]] && echo "command started at ${boot}s guest uptime" || echo "guest never reached /init"))"
  tail_console; exit 124
fi
if [[ -z $exitl ]]; then
  err "FAIL: guest stopped without reporting an exit status (qemu exit $qrc)"
  [[ -s $work/qemu.log ]] && sed 's/^/  qemu: /' "$work/qemu.log" >&2
  tail_console; exit 125
fi
rc=$(sed -n 's/.*rc=\([0-9]*\).*/\1/p' <<<"$exitl")
log "kernel ${kver} btf=$(sed -n 's/.*btf=\([a-z]*\).*/\1/p' <<<"$start") boot-to-cmd ${boot}s wall ${wall}s exit ${rc}"
exit "$rc"
