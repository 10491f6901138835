// Queries on memtop's NDJSON reports (one JSON object per report, see the
// README's "JSON output"): the documented shape of a report, a process's
// entry and numbers, its stacks selected by frame and summed, and compact
// descriptions for failure messages.  Pure functions of a parsed report.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rt {

using json = nlohmann::json;

// Checks the documented JSON shape of a report (CHECKs).
void check_report_shape(const json& report);

struct Sum {
    long long bytes = 0, allocs = 0, alloc_bytes_total = 0, allocs_total = 0;
    int stacks = 0;
};

struct ProcStats {
    bool found = false;
    int pid = 0;
    std::string comm;
    long long heap_bytes = 0, heap_peak_bytes = 0, allocs_total = 0, frees_total = 0;
};

// Does a frame's "function" (string or null) name this function?  Accepts
// the exact name and demangled forms "name(...)".
bool fn_is(const json& frame, const std::string& name);

// pid's entry in a report's processes, or null.
const json* entry(const json& report, int pid);
std::string fn_of(const json& frame);

ProcStats proc_stats(const json& report, int pid);
// The process whose comm is (a prefix of, comm is 15 chars max) the given
// program name; falls back to the only process if there is exactly one.
ProcStats proc_by_comm(const json& report, const std::string& prog_name);
std::vector<const json*> stacks_of(const json& report, int pid);
// The first stack of pid with exactly `bytes` outstanding, or null.
const json* stack_with_bytes(const json& report, int pid, long long bytes);
// Stacks of pid whose frames[0] is function `fn`, summed.
Sum sum_frame0(const json& report, int pid, const std::string& fn);
std::vector<const json*> stacks_frame0(const json& report, int pid, const std::string& fn);
// Stacks of pid with any frame naming `fn`, summed.
Sum sum_any_frame(const json& report, int pid, const std::string& fn);
std::vector<const json*> stacks_any_frame(const json& report, int pid, const std::string& fn);
Sum sum_all(const json& report, int pid);
// "fn0 <- fn1 <- ..." for messages
std::string chain_of(const json& stack);
// Compact description of a process's stacks for failure messages.
std::string describe_stacks(const json& report, int pid, size_t max_stacks = 40);

}  // namespace rt
