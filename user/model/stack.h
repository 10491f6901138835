// Call stacks as the kernel stores them, and the numbers charged to them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memtop {

// Bytes and counts charged to one (process instance, stack).
struct StackStats {
    uint32_t pid = 0;
    uint32_t epoch = 0;
    uint64_t stack_id = 0;  // 0: allocations whose stack could not be stored
    int64_t bytes = 0;      // outstanding
    int64_t allocs = 0;     // outstanding
    uint64_t alloc_bytes_total = 0;
    uint64_t allocs_total = 0;
    // Temporary allocations (heaptrack's sense): freed by the thread that
    // made them before it allocated anything else. Cumulative.
    uint64_t temp_allocs = 0;
    uint64_t temp_bytes = 0;
};

// One live block's age (--min-age), as the allocation table holds it.
struct BlockAge {
    uint32_t pid = 0;
    uint32_t epoch = 0;
    uint64_t stack_id = 0;
    uint64_t size = 0;
    double age_seconds = 0;
};

// Outstanding blocks of a stack younger than max_seconds and no younger
// than the bucket before (max_seconds < 0: the last bucket, no bound).
struct AgeBucket {
    double max_seconds = 0;
    uint64_t bytes = 0;
    uint64_t allocs = 0;
};

// The histogram's upper bounds: a second, ten, a minute, ten, an hour, more.
inline constexpr double kAgeBounds[] = {1, 10, 60, 600, 3600, -1};

// Which heap stacks a report shows, and in what order (--sort).
enum class StackOrder {
    Outstanding,  // bytes not freed yet: leaks
    Allocated,    // bytes allocated in all, freed or not: allocation hotspots
    Allocations,  // number of allocations in all
    Temporary,    // number of temporary allocations
};

// Each order's name on the command line and in JSON, and what it ranks by
// in the views' titles ("Top stacks by ...").
struct StackOrderInfo {
    StackOrder order;
    const char* name;
    const char* ranks_by;
};
inline constexpr StackOrderInfo kStackOrders[] = {
    {StackOrder::Outstanding, "outstanding", "outstanding bytes"},
    {StackOrder::Allocated, "allocated", "bytes allocated in all (freed or not)"},
    {StackOrder::Allocations, "allocations", "allocations in all (freed or not)"},
    {StackOrder::Temporary, "temporary", "temporary allocations (freed before the thread's next allocation)"},
};

inline const StackOrderInfo& stack_order_info(StackOrder o) {
    for (const auto& i : kStackOrders)
        if (i.order == o) return i;
    return kStackOrders[0];
}

inline const char* stack_order_name(StackOrder o) {
    return stack_order_info(o).name;
}

inline std::optional<StackOrder> parse_stack_order(const std::string& name) {
    for (const auto& i : kStackOrders)
        if (name == i.name) return i.order;
    return std::nullopt;
}

// A stored stack: user-space addresses, innermost first. ips[0] is the
// return address into the allocator's caller (heap stacks) or the faulting
// or calling instruction (growth and mapping stacks).
struct RawStack {
    std::vector<uint64_t> ips;
    bool truncated = false;  // deeper than memtop keeps
    bool complete = false;   // reaches the outermost frame (_start, a thread's start)
};

}  // namespace memtop
