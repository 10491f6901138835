// `memtop --lines FILE`: for one source file, what each of its lines
// allocated, like a line profiler's annotated listing (memory_profiler for
// native code). Pure: works on symbolized stacks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "symbolize/symbolizer.h"

namespace memtop {

struct LineStats {
    int line = 0;
    std::string function;  // the function the line is in (innermost, inlined included)
    int64_t bytes = 0;     // outstanding
    int64_t allocs = 0;    // outstanding
    uint64_t alloc_bytes_total = 0;
    uint64_t allocs_total = 0;
};

struct LineReport {
    std::string file;              // as asked
    std::string matched;           // the DWARF path that matched, "" if none did
    std::vector<LineStats> lines;  // sorted by line
};

// Does the DWARF file name `path` stand for `wanted`? The same path, or
// `wanted` is a trailing part of it at a '/' boundary ("src/a.c" matches
// "/build/proj/src/a.c").
bool source_matches(const std::string& path, const std::string& wanted);

// Adds one stack: each line of `file` the stack passes through (frames and
// their inlined calls) gets the stack's numbers, once per stack.
void add_stack_lines(LineReport& out, const StackStats& stats, const std::vector<Frame>& frames);

}  // namespace memtop
