// Aggregation: a kernel snapshot, the processes that ended since the last
// report, and facts from /proc make one Report, its stacks still raw
// addresses (symbolize/ names them). Pure: no BPF, no /proc of its own (the
// facts come through an interface), so every rule here has a unit test.
//
// What it decides: which processes a report lists (traced ones, ended ones
// once, every process in the system view), their resident memory, growth
// since the previous report and growth streaks, mappings, which stacks make
// the top (heap, growth, mappings), how whole the stacks are, and what the
// live screen hid.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "aggregate/process_facts.h"
#include "model/report.h"
#include "model/snapshot.h"

namespace memtop {

struct AggregateOptions {
    bool system_view = false;                    // no target: every process, resident memory first
    size_t top = 10;                             // stacks per list
    StackOrder order = StackOrder::Outstanding;  // --sort: which heap stacks, in what order
    // --min-age: heap stacks' outstanding figures count only blocks at least
    // this many seconds old, and each carries its age histogram. Needs the
    // snapshot's blocks.
    std::optional<double> min_age;
    std::optional<std::string> lines_file;  // --lines FILE: every heap stack goes to the line listing
};

// What one report is about besides the kernel's numbers.
struct ReportMoment {
    std::chrono::system_clock::time_point time;
    std::chrono::steady_clock::time_point now;  // growth rates are per second of this clock
    bool final = false;
    std::optional<uint32_t> focus;  // the screen's detail view: that process's top stacks too
    std::set<int> hidden;           // processes whose heap is not reported (the screen's `t`)
    SelfStats self;                 // memtop's own resident memory and CPU
    std::set<uint32_t> targets;     // -p PIDs, CMD: listed even before (or without) an allocation
    bool all_stacks = false;        // carry every heap stack (file exports, recordings)
    bool ended_all_stacks = false;  // carry every heap stack of the processes that ended (the run's summary files)
    bool glibc_heap = false;        // every allocator probed is glibc's: its footprint rules apply
};

// A process "is growing" after this many reports in a row with more
// resident memory than the one before.
inline constexpr int kGrowingIntervals = 3;

// Each (pid, epoch, stack)'s outstanding blocks by age (kAgeBounds). Pure.
std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::vector<AgeBucket>> age_histograms(
    const std::vector<BlockAge>& blocks, uint64_t sample_bytes = 0);

// Each (pid, epoch, stack)'s outstanding blocks' glibc footprint (bytes
// used, model/footprint.h), blocks younger than min_age left out; weighted
// under --sample. Pure.
std::map<std::tuple<uint32_t, uint32_t, uint64_t>, int64_t> glibc_used_bytes(const std::vector<BlockAge>& blocks,
                                                                             uint64_t sample_bytes = 0,
                                                                             std::optional<double> min_age = {});

class Aggregator {
public:
    explicit Aggregator(AggregateOptions opt) : opt_(std::move(opt)) {}
    // The screen's `o`: the next reports' heap stacks in this order.
    void set_order(StackOrder order) { opt_.order = order; }
    StackOrder order() const { return opt_.order; }

    // `ended`: every process that ended since the last report, as its exit
    // event gave its final numbers (heap-traced or not).
    Report build(const KernelSnapshot& k, const std::vector<ProcessStats>& ended, ProcessFacts& facts,
                 const ReportMoment& m);

private:
    // What the system view remembers of a process between reports.
    struct SystemProcess {
        std::optional<RssStats> seed;  // from /proc at first sight, until rss_stat fires for it
        RssStats last;
        int64_t prev_resident = -1;
        int grow_streak = 0;
        bool have_identity = false;
        ProcessIdentity identity;
    };
    ProcessStats ended_process(ProcessStats p, const KernelSnapshot& k);
    void add_system_view(Report& r, const KernelSnapshot& k, const std::map<uint32_t, ProcessStats>& heap,
                         ProcessFacts& facts, std::chrono::steady_clock::time_point now);
    void add_mapped(Report& r, const KernelSnapshot& k) const;
    // Report::all_python_stacks and python_rest of these stacks.
    void add_python_export(Report& r, std::vector<StackStats> any, const KernelSnapshot& k) const;
    void add_targets(Report& r, const KernelSnapshot& k, const std::set<uint32_t>& targets, ProcessFacts& facts,
                     std::chrono::steady_clock::time_point now);
    void resident(ProcessStats& p, SystemProcess& sp, const KernelSnapshot& k, ProcessFacts& facts, double dt);
    double since_last_report(std::chrono::steady_clock::time_point now);

    AggregateOptions opt_;
    std::map<uint32_t, SystemProcess> system_;
    std::chrono::steady_clock::time_point last_report_;
};

// The stack as a report carries it: numbers and raw addresses.
ReportStack report_stack(const StackStats& s, const KernelSnapshot& k);
// How whole the stacks of `stacks` are (one count per (pid, stack)).
UnwindSummary unwind_summary(const std::vector<StackStats>& stacks, const KernelSnapshot& k);
// The screen's `t` on a traced process: its heap is no longer reported.
void hide_untraced(Report& r, const std::set<int>& hidden);

}  // namespace memtop
