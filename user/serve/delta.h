// /debug/pprof/heap?seconds=N: the heap profile of a window, as Go's
// runtime serves it (net/http/pprof's delta profile): the profile at the
// window's end minus the one at its start, stack by stack. Pure: two
// reports in, one report out, for the pprof encoder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/report.h"

namespace memtop {

// A report whose all_stacks are the change from `start` to `end` (both with
// all_stacks filled), one per (pid, epoch, stack) present in either:
//   alloc_* (allocs_total, alloc_bytes_total): allocated during the window
//     (end's count minus start's; 0 for a stack gone by the end, whose
//     process ended: what it allocated after `start` is not known);
//   bytes, allocs (inuse): end's outstanding minus start's, negative where
//     the window freed more than it allocated.
// Stacks whose four values are all zero are left out, as pprof's merge
// does. A stack is the same stack when its process instance (pid, epoch),
// stack id and addresses are. `pid` keeps one process's stacks. time is
// start's, processes both reports' (for the comm labels), lost what was
// lost during the window.
Report heap_delta(const Report& start, const Report& end, std::optional<uint32_t> pid);

// `encode_pprof`'s serialized profile with its duration_nanos set (a field
// the encoder leaves out): protobuf's encoding lets a field be appended to
// a message already serialized.
std::string with_duration(std::string profile, int64_t duration_nanos);

}  // namespace memtop
