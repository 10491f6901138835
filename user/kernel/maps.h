// The kernel maps user space reads or purges, as file descriptors (-1 where
// the loaded build has none: the compat build lacks growth and mappings).
#pragma once

namespace memtop {

struct KernelMaps {
    int allocs = -1, stacks = -1, aggs = -1, procs = -1, counters = -1, events = -1, rss = -1;
    int growth = -1;                                                      // page-fault growth per stack
    int mapped = -1, mapped_ends = -1, mapped_aggs = -1, map_procs = -1;  // anonymous mappings
    int unwind_rows = -1, unwind_files = -1;                              // the unwinder's tables
    int targets = -1;                                                     // -p/-- CMD's processes (bpf/common.h)
    int py_procs = -1, py_stacks = -1;  // Python frames (bpf/python_frames.h): full build only
    int py_procs_gen = -1;              // changed after each change to py_procs
    int py_hold = -1;                   // CPythons held at Py_FinalizeEx (py_finalize)
    int mi_blocks = -1, mi_heaps = -1;  // mimalloc heaps (bpf/heap.h): full build only
    int py_allocs = -1, py_aggs = -1;   // Python's object-allocator domain (bpf/pymalloc.h): full build only
};

}  // namespace memtop
