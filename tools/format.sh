#!/bin/sh
# Formats the C and C++ sources with clang-format (.clang-format at the top,
# bpf/.clang-format for the BPF side), or with --check lists the files that
# are not formatted and fails. bpf/vmlinux.h is generated and left alone.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
files=$(git ls-files '*.c' '*.h' '*.cpp' | grep -v '^bpf/vmlinux\.h$')
if [ "${1:-}" = --check ]; then
    bad=""
    for f in $files; do
        clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
    done
    [ -z "$bad" ] && exit 0
    echo "not formatted (run tools/format.sh):$bad" >&2
    exit 1
fi
# shellcheck disable=SC2086
clang-format -i $files
