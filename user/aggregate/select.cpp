#include "aggregate/select.h"

#include <algorithm>

namespace memtop {

std::vector<StackStats> top_stacks(std::vector<StackStats> stacks, size_t n) {
    std::erase_if(stacks, [](const StackStats& s) { return s.bytes <= 0 && s.allocs <= 0; });
    std::sort(stacks.begin(), stacks.end(), [](const StackStats& a, const StackStats& b) {
        if (a.bytes != b.bytes) return a.bytes > b.bytes;
        if (a.allocs != b.allocs) return a.allocs > b.allocs;
        if (a.pid != b.pid) return a.pid < b.pid;
        return a.stack_id < b.stack_id;
    });
    if (stacks.size() > n) stacks.resize(n);
    return stacks;
}

namespace {

// The order's own figure, then outstanding bytes and the stable tie-breaks.
std::vector<StackStats> top_by(std::vector<StackStats> stacks, size_t n, StackOrder order) {
    if (order == StackOrder::Outstanding) return top_stacks(std::move(stacks), n);
    auto key = [order](const StackStats& s) -> uint64_t {
        switch (order) {
            case StackOrder::Allocated:
                return s.alloc_bytes_total;
            case StackOrder::Allocations:
                return s.allocs_total;
            case StackOrder::Temporary:
                return s.temp_allocs;
            case StackOrder::Outstanding:
                break;
        }
        return 0;
    };
    std::erase_if(stacks, [&](const StackStats& s) { return key(s) == 0; });
    std::sort(stacks.begin(), stacks.end(), [&](const StackStats& a, const StackStats& b) {
        if (key(a) != key(b)) return key(a) > key(b);
        if (a.bytes != b.bytes) return a.bytes > b.bytes;
        if (a.pid != b.pid) return a.pid < b.pid;
        return a.stack_id < b.stack_id;
    });
    if (stacks.size() > n) stacks.resize(n);
    return stacks;
}

}  // namespace

std::vector<StackStats> top_stacks(std::vector<StackStats> stacks, size_t n, std::optional<uint32_t> focus,
                                   StackOrder order) {
    if (!focus) return top_by(std::move(stacks), n, order);
    std::vector<StackStats> mine;
    for (const auto& s : stacks)
        if (s.pid == *focus) mine.push_back(s);
    auto top = top_by(std::move(stacks), n, order);
    for (const auto& s : top_by(std::move(mine), n, order)) {
        bool there = std::any_of(top.begin(), top.end(), [&](const StackStats& t) {
            return t.pid == s.pid && t.epoch == s.epoch && t.stack_id == s.stack_id;
        });
        if (!there) top.push_back(s);
    }
    return top;
}

void order_processes(std::vector<ProcessStats>& processes) {
    std::sort(processes.begin(), processes.end(), [](const ProcessStats& a, const ProcessStats& b) {
        int64_t ra = a.rss ? a.rss->resident() : -1, rb = b.rss ? b.rss->resident() : -1;
        if (ra != rb) return ra > rb;
        if (a.heap_bytes != b.heap_bytes) return a.heap_bytes > b.heap_bytes;
        return a.pid < b.pid;
    });
}

}  // namespace memtop
