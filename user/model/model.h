// What the kernel maps hold, copied out: the records every later stage
// (aggregation, symbolization, views) works on. No libbpf types here, so the
// pure stages and their tests need neither root nor BPF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace memtop {

// Resident memory, bytes, from the kernel's own counters (kmem:rss_stat).
struct RssStats {
    int64_t file = 0, anon = 0, shmem = 0, swap = 0;
    int64_t peak = 0;  // highest file + anon + shmem since memtop started
    int64_t resident() const { return file + anon + shmem; }
};

struct ProcessStats {
    uint32_t pid = 0;
    uint32_t epoch = 0;  // process instance (changes at exec, pid reuse)
    std::string comm;
    int64_t heap_bytes = 0;
    int64_t heap_peak_bytes = 0;
    uint64_t allocs_total = 0;
    uint64_t frees_total = 0;
    bool exited = false;      // final numbers of a process that has ended
    bool heap_traced = true;  // heap_* and *_total are known (its allocator is probed)

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

struct StackStats {
    uint32_t pid = 0;
    uint32_t epoch = 0;
    uint64_t stack_id = 0;  // 0: allocations whose stack could not be stored
    int64_t bytes = 0;      // outstanding
    int64_t allocs = 0;     // outstanding
    uint64_t alloc_bytes_total = 0;
    uint64_t allocs_total = 0;
};

// Everything that was not recorded, by reason (bpf/lost_counters.def says
// what each means). Shown in every report, in the list's order.
enum class Lost : size_t {
#define LOST_COUNTER(id, name, text, brief, option) name,
#include "lost_counters.def"
#undef LOST_COUNTER
};
struct LostKind {
    Lost kind;
    const char* name;    // JSON field
    const char* text;    // the text report's words
    const char* brief;   // the live screen's words
    const char* option;  // what makes room for more ("" if nothing does)
};
inline constexpr LostKind kLostKinds[] = {
#define LOST_COUNTER(id, name, text, brief, option) {Lost::name, #name, text, brief, option},
#include "lost_counters.def"
#undef LOST_COUNTER
};

struct LostCounters {
    uint64_t count[std::size(kLostKinds)] = {};
    uint64_t& operator[](Lost k) { return count[static_cast<size_t>(k)]; }
    uint64_t operator[](Lost k) const { return count[static_cast<size_t>(k)]; }
};

}  // namespace memtop
