// How the kernel side is loaded: map sizes and what to turn on.
#pragma once

#include <cstdint>

namespace memtop {

struct MapSizes {
    uint32_t allocs = 1u << 21;       // live allocations tracked at once (allocated as used: bpf/heap.h)
    uint32_t stacks = 1u << 16;       // distinct stacks (allocated as stored: bpf/stack.h)
    uint32_t aggs = 1u << 17;         // (process, stack) pairs (allocated as used)
    uint32_t procs = 1u << 14;        // processes (heap-traced, and for resident memory)
    uint32_t unwind_rows = 1u << 21;  // unwind-table rows, all files together (8 bytes each)
    uint32_t mappings = 1u << 17;     // anonymous mappings recorded at once (mmap/brk)
};

struct TracerConfig {
    MapSizes sizes;
    bool verbose = false;
    bool uprobe_multi = true;                  // uprobe_multi links where the kernel has them
    bool uprobe_session = true;                // and uprobe sessions (6.13+) for the allocation entries
    bool force_compat = false;                 // the 5.10 build even where the full one loads (tests of the fallback)
    bool dwarf = true;                         // unwind with tables where the kernel can (else frame pointers)
    uint64_t heap_sample_bytes = 0;            // --sample: heap calls sampled every BYTES on average; 0 exact
    uint64_t python_sample_bytes = 0;          // Python objects sampled in-process every BYTES on average; 0 exact
    uint64_t fault_sample_bytes = 512 * 1024;  // page-fault growth stacks: mean bytes between samples; 0 off
    int cgroup_fd = -1;                        // heap tracing only for tasks in this cgroup (v2 directory fd); -1 all
    bool traced_only = false;     // growth and mapping stacks only of heap-traced processes (a target was given)
    bool mappings = true;         // anonymous mmap/munmap/mremap/brk per stack (syscall tracepoints)
    bool python_objects = false;  // --python-objects: Python's object allocator per Python line (a trap per object)
};

// Probability that a Poisson process over bytes with mean interval `mean`
// samples a 4096-byte page: 1 - exp(-4096/mean). A sampled page stands for
// 4096/p bytes.
double page_sample_probability(uint64_t mean);

}  // namespace memtop
