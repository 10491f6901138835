// Reading a whole file of /proc.
#pragma once

#include <optional>
#include <string>

namespace memtop {

// Reads the whole file at `path` (read(2) until EOF; /proc files report
// size 0). On failure returns nullopt and, if `error` is given, sets it to
// e.g. "read /proc/42/status: No such file or directory".
std::optional<std::string> read_proc_file(const std::string& path, std::string* error);

}  // namespace memtop
