// A report's heap stacks as folded stacks (Brendan Gregg's FlameGraph input,
// also read by speedscope): "root;...;leaf BYTES", one line per stack.
#pragma once

#include <string>
#include <vector>

#include "model/report.h"

namespace memtop {

// One line per stack with outstanding bytes: the process ("comm (pid)") as
// the root, then its frames outermost first (inlined functions as frames of
// their own), the allocating function last, and the stack's outstanding
// bytes. Frames without a name read "module+0xOFFSET" or "0xADDRESS".
// `python_stacks` (Python's object domain, --python-objects) follow, each
// under a frame "[python objects]" right below its process: pymalloc's
// objects are not in the heap's bytes.
inline constexpr const char* kFoldedPythonRoot = "[python objects]";
std::string render_folded(const Report& r, const std::vector<ReportStack>& stacks,
                          const std::vector<ReportStack>& python_stacks = {});

}  // namespace memtop
