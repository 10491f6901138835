// Where the file exports of a run go (--pprof, --folded), checked before
// anything is traced and written from the final report.
#pragma once

#include <string>

#include "model/report.h"

namespace memtop {

struct ExportFiles {
    std::string pprof;   // --pprof OUT: gzip'd profile.proto; "" for none
    std::string folded;  // --folded OUT: folded stacks; "" for none
    bool any() const { return !pprof.empty() || !folded.empty(); }
};

// Throws MemtopError (usage) when an output could not be created later: its
// directory is missing or not writable, or the path is a directory. Said
// before tracing starts, so a typo costs nothing.
void check_export_files(const ExportFiles& files);
// The same for one output file given with `option`.
void check_output_path(const char* option, const std::string& path);

// Writes each asked-for file from r.all_stacks (every heap stack); throws
// MemtopError naming the file and the reason. A file is replaced whole
// (written beside it, then renamed) so a failure never leaves half of one.
void write_export_files(const Report& r, const ExportFiles& files);

}  // namespace memtop
