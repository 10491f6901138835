// `memtop report FILE`: which moment of the recording to show (--at TIME,
// --peak [PID]). The command line is main.cpp's; the choices are made here.
#pragma once

#include <optional>
#include <string>

#include "record/moments.h"
#include "record/recording.h"
#include "views/export/files.h"

namespace memtop {

struct ReportQuery {
    std::string at;                   // --at TIME; "" for the last report
    std::optional<std::string> peak;  // --peak [PID]: set ("" without PID) when given
};

// Throws MemtopError (usage) for options that do not go together.
void check_report_query(const ReportQuery& q, const ExportFiles& exports);

// The report the query asks for: the last one, or the last at or before
// --at's moment or --peak's. Says on stderr, in one line, which moment was
// chosen when it was asked for. Throws MemtopError for a moment the
// recording does not hold (before its first report, after its end, a pid
// it never saw). nullopt when the file holds no whole report at all.
std::optional<ChosenReport> choose_report(Recording& rec, const std::string& file, const ReportQuery& q);

}  // namespace memtop
