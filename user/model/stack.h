// Call stacks as the kernel stores them, and the numbers charged to them.
#pragma once

#include <cstdint>
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
};

// A stored stack: user-space addresses, innermost first. ips[0] is the
// return address into the allocator's caller (heap stacks) or the faulting
// or calling instruction (growth and mapping stacks).
struct RawStack {
    std::vector<uint64_t> ips;
    bool truncated = false;  // deeper than memtop keeps
    bool complete = false;   // reaches the outermost frame (_start, a thread's start)
};

}  // namespace memtop
