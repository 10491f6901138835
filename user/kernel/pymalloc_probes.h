// The uprobes of Python's object-allocator domain (bpf/pymalloc.h) for one
// CPython executable: each inlined pymalloc check found by
// attach/pymalloc_sites with its recipe as the probe's cookie, pymalloc's
// own malloc and free functions (what a hook such as tracemalloc calls),
// and allocate_from_new_pool's return. Pure: reads only the plan, which the
// placement worker (kernel/unwind/cfi_worker, PlanKind::Pymalloc) made.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attach/file_plan.h"

namespace memtop {

struct PymallocProbes {
    std::vector<uint64_t> offsets;  // file offsets of py_site's probes
    std::vector<uint64_t> cookies;  // their recipes, one per offset
    uint64_t new_pool_offset = 0;   // allocate_from_new_pool: py_new_pool_return
    size_t sites = 0;               // inlined malloc and free checks probed
    // Inlined checks not probed, and why (calloc's two arguments are not
    // decoded; a fallback whose argument the decoder could not follow).
    // Realloc checks need no probe: a realloc that moves its block calls
    // pymalloc's malloc and free functions, which are probed.
    size_t skipped = 0;
    std::string skipped_why;
    std::string problem;  // non-empty: nothing can be probed, and why
};

// file: the executable's plan; every offset is checked to be in its code.
PymallocProbes pymalloc_probes(const FilePlan& file);

}  // namespace memtop
