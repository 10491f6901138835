// Copies the kernel maps out into a KernelSnapshot (model/snapshot.h): the
// one way numbers leave the kernel for a report.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "kernel/maps.h"
#include "model/sampling.h"
#include "model/snapshot.h"

namespace memtop {

class MapReader {
public:
    // growth_weight: bytes one growth sample stands for (4096 / p).
    // max_stacks: the stack map's size; cached stacks beyond 4x are dropped.
    // sample_bytes: --sample's mean interval (0: exact); heap figures are
    // then estimates (model/sampling.h). python_sample_bytes: the Python
    // domain's in-process interval (its sampled objects' weights).
    MapReader(const KernelMaps& maps, double growth_weight, uint32_t max_stacks, uint64_t sample_bytes = 0,
              uint64_t python_sample_bytes = 0);

    // Processes, resident memory, the three kinds of stacks with every stack
    // they name, and the lost counters. Per-process mapping totals are read
    // after the mapping stacks, so a report never shows a mapping's stack
    // gone while its bytes are still in the process's total.
    KernelSnapshot read();

    // The procs map (and, when sampling, the heap aggregates the estimates
    // come from; when the Python domain is sampled in-process, its
    // aggregates too).
    std::vector<ProcessStats> heap_processes() const;
    // Every live block's size, stack and age: the whole allocation table.
    std::vector<BlockAge> block_ages() const;

    // Resident memory of every process the kernel follows, and anonymous
    // memory mapped per process: the cheap reads --record samples.
    std::map<uint32_t, MappedStats> read_mapped() const;
    std::map<uint32_t, RssStats> read_rss() const;

    // A stored stack. Stacks never change once stored (the id is their
    // hash), so each is read from the kernel once. Null if it is not there.
    const RawStack* stack(uint64_t id);

private:
    std::vector<StackStats> read_aggs(int fd) const;
    std::vector<SampledAgg> read_sampled_aggs() const;
    std::vector<StackStats> read_growth() const;  // epoch: the address space (mm_id)
    LostCounters read_lost() const;

    KernelMaps maps_;
    double growth_weight_;
    uint32_t max_stacks_;
    uint64_t sample_bytes_;
    uint64_t python_sample_bytes_;
    std::unordered_map<uint64_t, RawStack> stack_cache_;
};

}  // namespace memtop
