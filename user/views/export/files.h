// Where the file exports of a run go (--pprof, --folded, --html), checked before
// anything is traced and written from the final report.
#pragma once

#include <string>
#include <vector>

#include "model/report.h"
#include "views/export/html.h"

namespace memtop {

struct ExportFiles {
    std::string pprof;   // --pprof OUT: gzip'd profile.proto; "" for none
    std::string folded;  // --folded OUT: folded stacks; "" for none
    std::string html;    // --html OUT: the HTML report; "" for none (written by write_html_file)
    bool any() const { return !pprof.empty() || !folded.empty() || !html.empty(); }
};

// Throws MemtopError (usage) when an output could not be created later: its
// directory is missing or not writable, or the path is a directory. Said
// before tracing starts, so a typo costs nothing.
void check_export_files(const ExportFiles& files);
// The same for one output file given with `option`.
void check_output_path(const char* option, const std::string& path);

// The Python domain's stacks of the file exports: all_python_stacks and,
// for each python_rest, one stack of one frame named "[N other Python
// stacks]" holding their numbers (so a profile's totals are the domain's);
// a report without them (an earlier one of a recording) gives its top
// python_stacks.
std::vector<ReportStack> python_export_stacks(const Report& r);

// Writes each asked-for file from r.all_stacks (every heap stack) and the
// Python domain's stacks (python_export_stacks); throws
// MemtopError naming the file and the reason. A file is replaced whole
// (written beside it, then renamed) so a failure never leaves half of one.
void write_export_files(const Report& r, const ExportFiles& files);

// --html: the page of a whole run (a recording, or a live run's final
// report and time series), written the same way.
void write_html_file(const std::string& path, const HtmlRun& run);
void write_html_file(const std::string& path, const HtmlPage& page);

}  // namespace memtop
