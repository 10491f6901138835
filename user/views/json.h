// The NDJSON view (--json): one object per report, one line, no trailing
// newline. The shape is a contract for tools built on memtop (docs/json.md):
// fields are added, never renamed or removed.
#pragma once

#include <string>

#include "model/report.h"

namespace memtop {

std::string render_json(const Report& r);

}  // namespace memtop
