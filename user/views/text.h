// The text view, for people: a process table, the top stacks, the line
// listing, and what was lost.
#pragma once

#include <string>

#include "model/report.h"

namespace memtop {

std::string render_text(const Report& r);

}  // namespace memtop
