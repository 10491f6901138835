#!/bin/sh
# Symbolization throughput, cold and warm cache, and unwind-table build speed
# (tools/bench/symbolize_bench.cpp). A benchmark, not a test: it prints
# figures and asserts nothing. No root needed.
#   tools/bench-symbolize.sh [--frames N] [--rounds R] [--stack S] [--cfi-only] [PROGRAM]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MEMTOP_BUILD:-$root/build}
bench=$build/tools/bench/symbolize_bench
[ -x "$bench" ] || { echo "bench-symbolize: build first (tools/build.sh)" >&2; exit 1; }
exec "$bench" "$@"
