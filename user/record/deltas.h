// What makes a long recording small (format version 2, docs/recording.md):
// a sample lists only the processes whose numbers changed since the
// previous sample, and a report only the heap stacks whose numbers changed
// since the previous report (a stack's frames are written once, when it is
// first seen). The writers are the session's; the readers fold the records
// back, one at a time, keeping only the live state (each live process's
// last numbers, each live stack), never the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

namespace memtop {

// A heap stack's identity in a recording: pid, epoch, stack id.
using StackKey = std::tuple<uint32_t, uint32_t, uint64_t>;

// The report side of --record. encode() replaces an encode_report()
// JSON's "all_stacks" with "all_stacks_delta": {"changed": [...], "gone":
// [[pid, epoch, stack_id], ...]}, where a changed stack is either whole (a
// stack as "all_stacks" holds it: new, or its frames changed) or
// {"k": [pid, epoch, stack_id], "n": [bytes, allocs, alloc_bytes_total,
// allocs_total, temp_allocs, temp_bytes]} (plus "ages" when they changed).
// A report whose stacks repeat a key keeps its whole "all_stacks" (which
// also resets the reader's state).
class StackDeltaWriter {
public:
    void encode(nlohmann::json& report);

private:
    std::map<StackKey, nlohmann::json> prev_;
};

// The reader's side: apply() turns a report JSON with "all_stacks_delta"
// back into one with "all_stacks" (ordered by pid, epoch, stack id); one
// with "all_stacks" (version 1, or a reset) replaces the state. Throws
// std::runtime_error ("malformed report: ...") on a delta it cannot apply.
// Without `materialize` the state is updated and the report left without
// its stacks (a report read only to reach a later one: copying every live
// stack into it would cost as much as the whole file).
class StackDeltaReader {
public:
    void apply(nlohmann::json& report, bool materialize = true);
    size_t live() const { return state_.size(); }

private:
    std::map<StackKey, nlohmann::json> state_;
};

// The sample side of --record: `now` is every sampled process's entry
// (by pid); returns the entries that differ from the previous call's, and
// sets `gone` to the pids the previous call had and this one has not.
class SampleDeltaWriter {
public:
    std::vector<nlohmann::json> changed(std::map<uint32_t, nlohmann::json> now, std::vector<uint32_t>& gone);

private:
    std::map<uint32_t, nlohmann::json> prev_;
};

}  // namespace memtop
