// The host's memory (/proc/meminfo), bytes: what the live screen's header
// shows, carried by every report.
#pragma once

#include <cstdint>

namespace memtop {

struct MemInfo {
    int64_t total = 0;      // MemTotal
    int64_t free = 0;       // MemFree
    int64_t available = 0;  // MemAvailable (Linux 3.14+; else MemFree)
    int64_t swap_total = 0;
    int64_t swap_free = 0;
    // What `free` calls used since procps 4: what is not available.
    int64_t used() const { return total - available; }
    int64_t swap_used() const { return swap_total - swap_free; }
};

}  // namespace memtop
