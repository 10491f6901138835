// What the kernel maps hold, copied out: the records every later stage
// (aggregation, symbolization, views) works on. No libbpf types here, so the
// pure stages and their tests need neither root nor BPF.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memtop {

struct ProcessStats {
    uint32_t pid = 0;
    uint32_t epoch = 0;  // process instance (changes at exec, pid reuse)
    std::string comm;
    int64_t heap_bytes = 0;
    int64_t heap_peak_bytes = 0;
    uint64_t allocs_total = 0;
    uint64_t frees_total = 0;
    bool exited = false;  // final numbers of a process that has ended
};

struct StackStats {
    uint32_t pid = 0;
    uint32_t epoch = 0;
    uint64_t stack_id = 0;  // 0: allocations whose stack could not be stored
    int64_t bytes = 0;      // outstanding
    int64_t allocs = 0;     // outstanding
    uint64_t alloc_bytes_total = 0;
    uint64_t allocs_total = 0;
};

// Everything that was not recorded, by reason. Shown in every report.
struct LostCounters {
    uint64_t alloc_map_full = 0;
    uint64_t stack_map_full = 0;
    uint64_t agg_map_full = 0;
    uint64_t proc_map_full = 0;
    uint64_t events_lost = 0;
    uint64_t stacks_truncated = 0;
    uint64_t missed_frees = 0;
    uint64_t peak_races = 0;
};


}  // namespace memtop
