// The processes of a run with targets (-p, -- CMD and what -f follows)
// that ended before its final report. An interval report lists each once,
// when it ends, and memtop then forgets its kernel records; the final
// report printed is the run's summary, so it lists them again, with the
// heap stacks they were shown with. Bounded: user-space copies only, at
// most `max_processes` rows and the report's -T stacks. Pure, unit-tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "model/report.h"

namespace memtop {

class EndedTargets {
public:
    EndedTargets(size_t top_n, size_t max_processes = 4096) : top_n_(top_n), max_processes_(max_processes) {}

    // From a report before the final one: its ended processes, and of their
    // stacks the top -T among all kept (in the report's order).
    void keep(const Report& r);
    // Into the final report: each kept process it does not list (marked
    // reported_before) and their stacks where they rank in its top -T
    // (`focus`: the stacks of that process kept too, as the report selects).
    void add_to(Report& final_report, std::optional<uint32_t> focus) const;
    // Ended processes not kept: more than max_processes ended.
    uint64_t not_kept() const { return not_kept_; }
    size_t size() const { return processes_.size(); }

private:
    size_t top_n_, max_processes_;
    std::vector<ProcessStats> processes_;
    std::vector<ReportStack> stacks_;
    StackOrder order_ = StackOrder::Outstanding;
    uint64_t not_kept_ = 0;
};

}  // namespace memtop
