// Parsing of /proc/meminfo: the host's memory, for the live screen's header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace memtop {

// Bytes (the file says kB).
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

// Parses the text of /proc/meminfo. Pure. Returns nullopt without a MemTotal
// line, or if a field it reads is not "<number> kB". Other lines are ignored.
std::optional<MemInfo> parse_meminfo(std::string_view text);

// Reads and parses /proc/meminfo; on failure nullopt and `error` (if given)
// says why, e.g. "read /proc/meminfo: Permission denied".
std::optional<MemInfo> read_meminfo(std::string* error);

}  // namespace memtop
