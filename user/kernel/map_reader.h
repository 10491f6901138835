// Copies the kernel maps out into a KernelSnapshot (model/snapshot.h): the
// one way numbers leave the kernel for a report.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "kernel/maps.h"
#include "model/snapshot.h"

namespace memtop {

class MapReader {
public:
    // growth_weight: bytes one growth sample stands for (4096 / p).
    // max_stacks: the stack map's size; cached stacks beyond 4x are dropped.
    MapReader(const KernelMaps& maps, double growth_weight, uint32_t max_stacks);

    // Processes, resident memory, the three kinds of stacks with every stack
    // they name, and the lost counters. Per-process mapping totals are read
    // after the mapping stacks, so a report never shows a mapping's stack
    // gone while its bytes are still in the process's total.
    KernelSnapshot read();

    std::vector<ProcessStats> heap_processes() const;  // the procs map alone
    // Every live block's size, stack and age: the whole allocation table.
    std::vector<BlockAge> block_ages() const;

private:
    std::vector<StackStats> read_aggs(int fd) const;
    std::vector<StackStats> read_growth() const;
    std::map<uint32_t, MappedStats> read_mapped() const;
    std::map<uint32_t, RssStats> read_rss() const;
    LostCounters read_lost() const;
    // Stacks never change once stored (the id is their hash), so each is
    // read from the kernel once.
    const RawStack* stack(uint64_t id);

    KernelMaps maps_;
    double growth_weight_;
    uint32_t max_stacks_;
    std::unordered_map<uint64_t, RawStack> stack_cache_;
};

}  // namespace memtop
