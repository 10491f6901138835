// What the kernel maps hold at one moment, copied out by kernel/ and handed
// to aggregation: plain records, no BPF types, so aggregation and its tests
// need neither root nor a kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "model/lost.h"
#include "model/process.h"
#include "model/sampling.h"
#include "model/stack.h"

namespace memtop {

// The unwind tables in the kernel (kernel/unwind/).
struct UnwindTableStats {
    size_t files = 0;     // tables loaded
    size_t failed = 0;    // files with no usable table (frame pointers only)
    size_t rows = 0;      // rows in use
    size_t capacity = 0;  // rows the kernel array holds
    size_t bytes = 0;     // kernel memory of the rows array
};

struct KernelSnapshot {
    std::vector<ProcessStats> heap;          // heap-traced processes now (heap and counts only)
    std::map<uint32_t, RssStats> rss;        // resident memory by pid, every process the kernel follows
    std::map<uint32_t, MappedStats> mapped;  // anonymous mappings by pid (when recorded)
    std::vector<StackStats> heap_stacks;     // outstanding and total bytes per (process, stack)
    std::vector<StackStats> growth_stacks;   // estimated resident bytes first touched; allocs = samples; epoch = mm_id
    std::vector<StackStats> mapping_stacks;  // bytes still mapped; allocs = mappings; epoch = mm_id
    std::unordered_map<uint64_t, RawStack> stacks;  // every stack id the lists name (0 aside)
    std::vector<BlockAge> blocks;                   // --min-age: every live block's age, else empty
    bool blocks_read = false;
    LostCounters lost;
    // --sample: mean bytes between samples, 0 when exact. Then `heap` and
    // `heap_stacks` hold estimates (model/sampling.h), and heap_estimates
    // those of every (pid, epoch) with aggregates, ended processes' included.
    uint64_t sample_bytes = 0;
    std::map<std::pair<uint32_t, uint32_t>, HeapEstimate> heap_estimates;

    bool mappings_recorded = false;  // mmap/munmap/mremap/brk are traced
    bool unwind_tables = false;      // stacks are unwound with tables (else frame pointers)
    UnwindTableStats tables;
    size_t probes = 0;            // uprobes attached (entry and return)
    uint64_t kernel_bytes = 0;    // memtop's BPF maps, as the kernel accounts them
    size_t python_processes = 0;  // CPython processes whose heap stacks get Python frames (py_procs)
    // Python's object-allocator domain (bpf/pymalloc.h): inlined pymalloc
    // sites probed and skipped; the domain's stacks (bytes and objects).
    size_t py_sites = 0, py_sites_skipped = 0;
    std::vector<StackStats> python_stacks;
    // The processes whose Python objects the in-process sampler sampled
    // (aggregates keyed by size): their python_stacks and py_* are estimates,
    // those of every (pid, epoch) here.
    std::map<std::pair<uint32_t, uint32_t>, HeapEstimate> python_estimates;
};

}  // namespace memtop
