#!/usr/bin/env bash
# extract-vmlinux.sh BZIMAGE OUT - write the ELF vmlinux held compressed in an
# x86 bzImage to OUT.  Finds each compression format's magic in the image and
# decompresses from there until an ELF file comes out (the idea of the
# kernel's scripts/extract-vmlinux).  Used by tools/gen-vmlinux-h.sh (BTF)
# and vmtest/run-vm.sh (PVH boot of the ELF skips the in-guest decompression,
# which costs ~3 s under TCG).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BZIMAGE OUT" >&2; exit 2; }
img=$1 dst=$2
is_elf() { [[ -s $1 ]] && [[ $(head -c4 "$1" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; }
if is_elf "$img"; then cp "$img" "$dst"; exit 0; fi
formats=(
  '\xfd\x37\x7a\x58\x5a\x00|xz -dcq'
  '\x1f\x8b\x08|gzip -dcq'
  '\x28\xb5\x2f\xfd|zstd -dcq'
  '\x02\x21\x4c\x18|lz4 -dcq'
  '\x42\x5a\x68|bzip2 -dcq'
  '\x5d\x00\x00\x00|xz -dcq --format=lzma'
  '\x89\x4c\x5a\x4f\x00\x0d\x0a\x1a\x0a|lzop -dcq'
)
tmp=$dst.tmp.$$
trap 'rm -f "$tmp"' EXIT
for f in "${formats[@]}"; do
  magic=${f%%|*} tool=${f#*|}
  command -v "${tool%% *}" >/dev/null || continue
  for off in $(LC_ALL=C grep -aboP "$magic" "$img" 2>/dev/null | cut -d: -f1 | head -n 20); do
    # Decompressors complain about the bytes after the stream; the output is
    # complete all the same, so only the result is checked.
    tail -c +"$((off + 1))" "$img" | $tool >"$tmp" 2>/dev/null || true
    if is_elf "$tmp"; then
      mv "$tmp" "$dst"
      echo "extract-vmlinux: payload at offset $off, ${tool%% *}" >&2
      exit 0
    fi
  done
done
echo "extract-vmlinux: no ELF payload found in $img" >&2
exit 1
