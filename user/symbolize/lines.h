// `memtop --lines FILE`: for one source file, what each of its lines
// allocated, like a line profiler's annotated listing (memory_profiler for
// native code). Pure: works on symbolized stacks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/frame.h"
#include "model/report.h"
#include "model/stack.h"

namespace memtop {

// Does the DWARF file name `path` stand for `wanted`? The same path, or
// `wanted` is a trailing part of it at a '/' boundary ("src/a.c" matches
// "/build/proj/src/a.c").
bool source_matches(const std::string& path, const std::string& wanted);

// Adds one stack: each line of `file` the stack passes through (frames and
// their inlined calls) gets the stack's numbers, once per stack.
void add_stack_lines(LineReport& out, const StackStats& stats, const std::vector<Frame>& frames);

}  // namespace memtop
