// The processes of a run with targets (-p, -- CMD and what -f follows)
// that ended before its final report. An interval report lists each once,
// when it ends, and memtop then forgets its kernel records; the final
// report printed is the run's summary, so it lists them again, with the
// heap stacks they were shown with. Bounded: user-space copies only, at
// most `max_processes` rows and the report's -T stacks. Reports that carry
// every heap stack (all_stacks: a run writing --pprof, --folded or --html
// at its end) have those of ended processes kept too, at most
// `max_all_stacks`, for the files of the run's summary; so do the Python
// domain's (its top -T, and its export lists). Pure, unit-tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "model/report.h"

namespace memtop {

class EndedTargets {
public:
    EndedTargets(size_t top_n, size_t max_processes = 4096, size_t max_all_stacks = 200000)
        : top_n_(top_n), max_processes_(max_processes), max_all_stacks_(max_all_stacks) {}

    // From a report before the final one: its ended processes, and of their
    // stacks the top -T among all kept (in the report's order).
    void keep(const Report& r);
    // Into the final report: each kept process it does not list (marked
    // reported_before) and their stacks where they rank in its top -T
    // (`focus`: the stacks of that process kept too, as the report selects);
    // and every stack of theirs kept from all_stacks into its all_stacks;
    // the Python domain's likewise (python_stacks, all_python_stacks and
    // python_rest).
    void add_to(Report& final_report, std::optional<uint32_t> focus) const;
    // Ended processes not kept: more than max_processes ended.
    uint64_t not_kept() const { return not_kept_; }
    // Stacks of kept processes left out of all_stacks: more than max_all_stacks.
    uint64_t all_stacks_not_kept() const { return all_not_kept_; }
    size_t size() const { return processes_.size(); }

private:
    // `from`'s stacks of the `kept` instances added to `into`, cut to the top -T.
    void keep_top(const std::vector<ReportStack>& from, const std::set<std::pair<uint32_t, uint32_t>>& kept,
                  std::vector<ReportStack>& into) const;
    size_t top_n_, max_processes_, max_all_stacks_;
    std::vector<ProcessStats> processes_;
    std::vector<ReportStack> stacks_;
    std::vector<ReportStack> all_stacks_;
    // The Python domain's: the top -T, and the export lists (Report::all_python_stacks, python_rest).
    std::vector<ReportStack> python_stacks_, all_python_;
    std::vector<StackRemainder> python_rest_;
    uint64_t all_not_kept_ = 0;
    StackOrder order_ = StackOrder::Outstanding;
    uint64_t not_kept_ = 0;
};

}  // namespace memtop
