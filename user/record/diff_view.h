// A ReportDiff (record/diff.h) as people and tools read it: text, one JSON
// object, and a Report whose stacks carry the changes, for the pprof
// encoder (negative values where a stack shrank, as `go tool pprof
// -diff_base` shows them).
#pragma once

#include <string>

#include "model/report.h"
#include "record/diff.h"

namespace memtop {

// What each side of a diff is, for the heading: "run.gz, report 3 at +2.00 s".
struct DiffSides {
    std::string now, base;
};

std::string render_diff_text(const ReportDiff& d, const DiffSides& sides);
// One line, no trailing newline (as --json's reports).
std::string render_diff_json(const ReportDiff& d, const DiffSides& sides);

// A Report whose all_stacks are the changed stacks, their stats the
// changes (the unsigned totals hold negative changes in two's complement:
// encode_pprof writes them back as int64), processes naming their comm, at
// `now`'s time. For encode_pprof / write_export_files.
Report diff_as_report(const ReportDiff& d, const Report& now);

}  // namespace memtop
