# shellcheck shell=bash disable=SC2034
# vmtest/kernels.sh - the kernel matrix (sourced by run-vm.sh and matrix.sh).
# alias -> SUITE:PACKAGE; metapackages are followed by
# tools/fetch-kernel-pkg.sh --follow to today's real image package.
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
kernel_aliases() { printf '%s\n' 5.10 6.1 6.12 7; }
