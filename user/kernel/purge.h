// Forgetting ended process instances in the kernel maps, once their final
// numbers are reported: their aggregates, live-allocation and mapping
// records, and the stacks nothing references any more.
#pragma once

#include <vector>

#include "kernel/maps.h"
#include "model/process.h"

namespace memtop {

void purge_instances(const KernelMaps& maps, const std::vector<EndedInstance>& instances);

}  // namespace memtop
