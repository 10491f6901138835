# shellcheck shell=bash disable=SC2034
# vmtest/kernels.sh - the kernel matrix (sourced by run-vm.sh, matrix.sh and
# ci.sh).
#
# Each alias names a suite and metapackage (what users of that release get)
# and the exact package the matrix last passed on. Packages move under the
# matrix (bookworm-security went from 6.12.117 to 6.12.118 between two
# runs), so a run boots the pinned package, and says so when the archive has
# a newer one. When the pinned one has left the archive (security suites
# keep only the newest), the newest is used and the run says that too:
# update the pin here once the matrix passes on it.
#   5.10  bullseye            generic  (9p as modules)
#   6.1   bookworm            generic  (the kernel bpf/vmlinux.h comes from)
#   6.12  bookworm-security   cloud    (no 9p)
#   7     trixie-backports    cloud    (newest 7.x; image in linux-binary-*)
MEMTOP_KERNELS_DEFAULT="5.10 6.1 6.12 7"

kernel_spec() {
  case $1 in
    5.10) echo bullseye:linux-image-amd64 ;;
    6.1) echo bookworm:linux-image-amd64 ;;
    6.12) echo bookworm-security:linux-image-6.12-cloud-amd64 ;;
    7|7.x|latest) echo trixie-backports:linux-image-cloud-amd64 ;;
    *:*) echo "$1" ;;
    *) return 1 ;;
  esac
}

# The package the matrix passed on last (NAME=VERSION); empty: the newest.
kernel_pin() {
  case $1 in
    5.10) echo linux-image-5.10.0-32-amd64=5.10.223-1 ;;
    6.1) echo linux-image-6.1.0-50-amd64=6.1.176-1 ;;
    6.12) echo linux-image-6.12.118+deb12-cloud-amd64=6.12.118-1~deb12u1 ;;
    7|7.x|latest) echo linux-binary-7.3.4+deb13-cloud-amd64=7.3.4-1~bpo13+1 ;;
    *) echo "" ;;
  esac
}

kernel_aliases() { printf '%s\n' 5.10 6.1 6.12 7; }

# fetch_kernel ALIAS|SUITE:PACKAGE -> the unpacked package directory on
# stdout. What a user should know (a newer kernel in the archive, a pin
# gone from it) goes to stderr as lines "kernel-note: ...". Needs $repo.
fetch_kernel() {
  local alias=$1 spec pin suite meta dir newest fetch=$repo/tools/fetch-kernel-pkg.sh
  spec=$(kernel_spec "$alias") || { echo "unknown kernel alias '$alias'" >&2; return 2; }
  pin=$(kernel_pin "$alias")
  suite=${spec%%:*} meta=${spec#*:}
  if [[ -n $pin ]]; then
    if dir=$("$fetch" -q "$suite" "$pin"); then
      if newest=$("$fetch" -q --resolve --follow "$suite" "$meta" 2>/dev/null) && [[ $newest != "${pin/=/ }" ]]; then
        echo "kernel-note: $alias: booting the pinned ${pin#*=}; $suite now has ${newest#* } (vmtest/kernels.sh)" >&2
      fi
      echo "$dir"
      return 0
    fi
    echo "kernel-note: $alias: the pinned ${pin%%=*} ${pin#*=} is gone from $suite; using its newest (update vmtest/kernels.sh)" >&2
  fi
  "$fetch" -q --follow "$suite" "$meta"
}
