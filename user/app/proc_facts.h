// The facts aggregation asks for, read from this host's /proc.
#pragma once

#include "aggregate/process_facts.h"

namespace memtop {

class ProcFacts : public ProcessFacts {
public:
    std::vector<uint32_t> live_pids() override;
    std::optional<RssStats> resident(uint32_t pid) override;
    ProcessIdentity identity(uint32_t pid) override;
    std::string comm(uint32_t pid) override;
    std::optional<MemInfo> host_memory() override;
};

}  // namespace memtop
