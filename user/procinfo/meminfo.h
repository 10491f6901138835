// Parsing of /proc/meminfo: the host's memory, for the live screen's header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/host.h"

namespace memtop {

// Parses the text of /proc/meminfo. Pure. Returns nullopt without a MemTotal
// line, or if a field it reads is not "<number> kB". Other lines are ignored.
std::optional<MemInfo> parse_meminfo(std::string_view text);

// Reads and parses /proc/meminfo; on failure nullopt and `error` (if given)
// says why, e.g. "read /proc/meminfo: Permission denied".
std::optional<MemInfo> read_meminfo(std::string* error);

}  // namespace memtop
