// CPython 3.11's location table (co_linetable, Objects/locations.md of the
// 3.11 branch): which source line each instruction of a code object is on.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace memtop {

// One entry: code units [start, start + length) are on `line` (nullopt: no
// location, e.g. a RESUME or CACHE entry with code 15).
struct LineRange {
    int start = 0, length = 0;
    std::optional<int> line;
};

// Decodes a whole table; firstlineno is co_firstlineno. Stops at the first
// malformed entry (the ranges before it are kept).
std::vector<LineRange> decode_linetable(std::string_view table, int firstlineno);

// The line of the instruction at code unit `unit` (an offset in 2-byte code
// units from co_code_adaptive); nullopt where the table has none.
std::optional<int> line_of(const std::vector<LineRange>& ranges, int unit);

}  // namespace memtop
