// What aggregation asks of /proc: which processes live, and what the kernel
// maps do not hold about them (a name, an identity, resident memory for a
// process whose counters have not changed since memtop started). An
// interface, so aggregation stays pure: procinfo/ reads the real /proc,
// unit tests hand in their own facts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/host.h"
#include "model/process.h"
#include "procinfo/identity.h"

namespace memtop {

class ProcessFacts {
public:
    virtual ~ProcessFacts() = default;
    virtual std::vector<uint32_t> live_pids() = 0;
    // Resident memory from /proc/PID/status; nullopt when the process is
    // gone or has none (a kernel thread).
    virtual std::optional<RssStats> resident(uint32_t pid) = 0;
    virtual ProcessIdentity identity(uint32_t pid) = 0;
    virtual std::string comm(uint32_t pid) = 0;
    virtual std::optional<MemInfo> host_memory() = 0;
};

}  // namespace memtop
