// The difference between two reports' heap stacks (`memtop report NEW
// --diff BASE`, `--diff-from TIME`): per stack, the change in outstanding
// bytes and allocations (and in bytes and allocations made in all).
//
// Stacks are matched by what their frames name, never by address: addresses
// move with ASLR between two runs, and one function's return addresses
// differ by an instruction or two between builds. A frame is its function,
// module, source file:line and inline chain; a frame without a function
// name is its module and offset in the file (stable across runs), and only
// one without a module (JIT code without a perf map entry) is its address.
// Stacks of processes with the same comm are summed, so that two runs of a
// program (with different pids) compare. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/report.h"

namespace memtop {

// One side's numbers of a stack (summed over the stacks that match).
struct DiffSide {
    int64_t bytes = 0;   // outstanding
    int64_t allocs = 0;  // outstanding
    int64_t alloc_bytes_total = 0;
    int64_t allocs_total = 0;
};

struct DiffStack {
    std::string comm;             // the process's name, "?" when the report does not know it
    uint32_t pid = 0, epoch = 0;  // NEW's process (BASE's when the stack is only there)
    std::vector<Frame> frames;    // NEW's frames (BASE's when the stack is only there)
    bool stored = true;           // false: allocations whose stack could not be stored
    DiffSide base, now;           // BASE's and NEW's numbers
    DiffSide change() const;      // now - base
};

struct ReportDiff {
    // Stacks whose outstanding bytes or allocations changed: largest growth
    // of outstanding bytes first (then of allocations, then of bytes
    // allocated in all).
    std::vector<DiffStack> stacks;
    // Stacks that allocated (and freed) more with nothing outstanding
    // changed: no part of a leak, shown as a count, kept for the pprof diff
    // (its alloc_space/alloc_objects).
    std::vector<DiffStack> churn;
    DiffSide base_total, now_total;  // over every stack of each side
    size_t unchanged = 0;            // stacks on both sides with the same numbers
    // The Python domain (--python-objects), apart from the heap, when either
    // side has one: each side's listed stacks (a final report's top -T and
    // one "[other Python stacks]" for the rest, so its totals are the
    // domain's; an earlier report's top -T only), matched as the heap's.
    bool python = false;
    std::vector<DiffStack> python_stacks, python_churn;
    DiffSide python_base_total, python_now_total;
    size_t python_unchanged = 0;
};

// The frame that stands for the Python stacks a final report does not list
// (Report::python_rest) in a diff.
inline constexpr const char* kOtherPythonStacks = "[other Python stacks]";

// The key two stacks are matched by (exposed for tests): comm, then each
// frame as described above, innermost first.
std::string diff_key(const std::string& comm, const std::vector<Frame>& frames, bool stored);

// NEW minus BASE over each report's all_stacks (every heap stack), and
// over their Python domains.
ReportDiff diff_reports(const Report& base, const Report& now);

}  // namespace memtop
