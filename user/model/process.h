// A process as memtop reports it: its heap (when its allocator is probed),
// resident memory, anonymous mappings and identity. Filled by the kernel
// reader (kernel/), completed by aggregation (aggregate/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace memtop {

// Resident memory, bytes, from the kernel's own counters (kmem:rss_stat).
struct RssStats {
    int64_t file = 0, anon = 0, shmem = 0, swap = 0;
    int64_t peak = 0;  // highest file + anon + shmem since memtop started
    int64_t resident() const { return file + anon + shmem; }
};

// Anonymous memory one process mapped while memtop watched.
struct MappedStats {
    uint32_t mm_id = 0;  // its address space
    int64_t bytes = 0, peak = 0;
    uint64_t maps_total = 0;
};

struct ProcessStats {
    uint32_t pid = 0;
    uint32_t epoch = 0;  // process instance (changes at exec, pid reuse); 0: not heap-traced
    std::string comm;
    int64_t heap_bytes = 0;
    int64_t heap_peak_bytes = 0;
    uint64_t allocs_total = 0;
    uint64_t frees_total = 0;
    bool exited = false;  // final numbers of a process that has ended
    // The final report of a run with targets lists its processes that ended
    // before it again: these final numbers were in an earlier report.
    bool reported_before = false;
    bool heap_traced = true;  // heap_* and *_total are known (its allocator is probed)
    // Python's object allocator (pymalloc's blocks of 1..512 bytes, counted
    // once: not in heap_bytes, which has the larger blocks it passes on to
    // malloc). All zero for a process that is no CPython memtop probes.
    int64_t py_bytes = 0;
    int64_t py_peak_bytes = 0;
    uint64_t py_allocs_total = 0;
    uint64_t py_frees_total = 0;
    bool py_sampled = false;  // the py_* are estimates: its objects were sampled in-process (--sample -- CMD)

    // System-wide columns (always there in the system view).
    std::optional<RssStats> rss;
    int64_t growth_bytes = 0;  // resident bytes gained since the previous report
    double growth_rate = 0;    // bytes per second over that interval
    bool growing = false;      // grew in each of the last few intervals
    bool has_identity = false;
    std::string cgroup;
    std::optional<std::string> container;
    int nspid = 0;  // pid inside its own pid namespace

    // Anonymous memory mapped with mmap/mremap/brk while memtop watched.
    bool mapped_known = false;  // recorded for this process
    int64_t mapped_bytes = 0;   // still mapped
    int64_t mapped_peak_bytes = 0;
    uint32_t mm_id = 0;  // its address space, for forgetting it once reported
};

// An ended process instance: its heap (epoch) and its address space (mm_id),
// whose kernel records are purged once its final numbers are reported.
struct EndedInstance {
    uint32_t pid = 0, epoch = 0, mm_id = 0;
};

}  // namespace memtop
