// One report: what the views (text, JSON) print. Built by the session from
// the maps; the selection and ordering below are pure and unit-tested.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "symbolize/lines.h"
#include "symbolize/symbolizer.h"

namespace memtop {

struct ReportStack {
    StackStats stats;
    std::vector<Frame> frames;  // frames[0]: the code that called the allocator
    bool truncated = false;     // deeper than memtop keeps
    bool complete = false;      // reaches the outermost frame (_start, a thread start)
};

// memtop's own cost, shown in every report.
struct SelfStats {
    int64_t rss_bytes = 0;
    double cpu_seconds = 0;     // user + system since memtop started
    double cpu_percent = 0;     // of one core, over the last interval
    size_t probes = 0;          // uprobes attached (entry and return)
    uint64_t kernel_bytes = 0;  // memtop's BPF maps in kernel memory
};

// How whole the stacks are: a user's reason to trust a stack, or not.
struct UnwindSummary {
    bool tables = false;      // unwound with tables (else frame pointers only)
    uint64_t stacks = 0;      // distinct stacks of the reported processes
    uint64_t incomplete = 0;  // of them, not reaching _start or a thread's start
    // Incomplete stacks by the module of their last frame: where the walk
    // stopped, so where frame pointers or unwind information are missing.
    std::map<std::string, uint64_t> incomplete_by_module;
    size_t table_files = 0, table_rows = 0, table_capacity = 0, table_failed = 0;
    size_t table_bytes = 0;  // kernel memory of the rows array
};

struct Report {
    std::chrono::system_clock::time_point time;
    bool final = false;
    SelfStats self;
    std::vector<ProcessStats> processes;
    std::vector<ReportStack> stacks;         // heap: outstanding bytes per allocation stack
    std::vector<ReportStack> growth_stacks;  // estimated resident bytes first touched per stack (page faults)
    std::vector<ReportStack> mappings;       // anonymous mmap/brk bytes still mapped, per stack
    LostCounters lost;
    UnwindSummary unwind;
    std::optional<LineReport> lines;  // --lines FILE
};

// The `n` stacks holding the most outstanding bytes (ties: more allocations,
// then lower pid, then stack id, so reports are stable). Stacks with nothing
// outstanding are not leaks and are left out.
std::vector<StackStats> top_stacks(std::vector<StackStats> stacks, size_t n);
// The same, plus the `n` top stacks of process `focus` (the screen's detail
// view is open on it) when they are not among those already.
std::vector<StackStats> top_stacks(std::vector<StackStats> stacks, size_t n, std::optional<uint32_t> focus);
// Processes by current heap, largest first; by resident memory when the
// report has the system-wide columns.
void order_processes(std::vector<ProcessStats>& processes);

// RFC 3339 in UTC with seconds: 2026-11-24T02:10:00Z
std::string rfc3339(std::chrono::system_clock::time_point t);
// 1536 -> "1.5 KiB"
std::string human_bytes(int64_t bytes);

// NDJSON: one line, no trailing newline. Shape documented in README.md.
std::string render_json(const Report& r);
// For people: a process table, then the top stacks, then what was lost.
std::string render_text(const Report& r);

}  // namespace memtop
