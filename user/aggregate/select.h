// Which stacks and in what order: pure, unit-tested.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "model/process.h"
#include "model/stack.h"

namespace memtop {

// The `n` stacks holding the most outstanding bytes (ties: more allocations,
// then lower pid, then stack id, so reports are stable). Stacks with nothing
// outstanding are not leaks and are left out.
std::vector<StackStats> top_stacks(std::vector<StackStats> stacks, size_t n);
// The `n` top stacks by `order` (StackOrder::Outstanding: as above; the
// others also list stacks whose blocks were all freed), plus the `n` top
// stacks of process `focus` (the screen's detail view is open on it) when
// they are not among those already.
std::vector<StackStats> top_stacks(std::vector<StackStats> stacks, size_t n, std::optional<uint32_t> focus,
                                   StackOrder order = StackOrder::Outstanding);
// Processes by resident memory when known, then by current heap, largest first.
void order_processes(std::vector<ProcessStats>& processes);

}  // namespace memtop
