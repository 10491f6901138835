// `memtop report FILE`: which moment of the recording to show (--at TIME,
// --peak [PID]), and what to make of it besides the report (--diff BASE,
// --diff-from TIME, --plot OUT.svg). The command line is main.cpp's; the
// choices are made here.
#pragma once

#include <optional>
#include <string>

#include "record/moments.h"
#include "record/recording.h"
#include "views/export/files.h"

namespace memtop {

struct ReportQuery {
    std::string at;                          // --at TIME; "" for the last report
    std::optional<std::string> peak;         // --peak [PID]: set ("" without PID) when given
    std::optional<std::string> peak_rss;     // --peak-rss [PID]: the same of resident memory
    std::optional<std::string> peak_python;  // --peak-python [PID]: of the Python domain (--python-objects)
    std::string diff;                        // --diff BASE: another recording
    std::string diff_from;                   // --diff-from TIME: a moment of the same recording
    std::string plot;                        // --plot OUT.svg
    bool diffing() const { return !diff.empty() || !diff_from.empty(); }
};

// Throws MemtopError (usage) for options that do not go together.
void check_report_query(const ReportQuery& q, const ExportFiles& exports);

// The report the query asks for: the last one, or the last at or before
// --at's moment or --peak's (--peak-rss's, --peak-python's). Says on stderr, in one line, which moment was
// chosen when it was asked for. Throws MemtopError for a moment the
// recording does not hold (before its first report, after its end, a pid
// it never saw). nullopt when the file holds no whole report at all.
std::optional<ChosenReport> choose_report(Recording& rec, const std::string& file, const ReportQuery& q);

// The last report of a recorded run with targets (-p, -- CMD, -f) as that
// run printed it at its end: with the processes that ended before it, from
// the reports that listed them (aggregate/ended_targets.h), and their
// stacks in its exports. Another report, or a recording of the system
// view, --heap-all, --cgroup or --container, is left as it is.
void add_ended_earlier(const Recording& rec, ChosenReport& chosen);

// --diff BASE / --diff-from TIME: prints `now` minus the base (BASE's last
// report, or this recording's report at or before TIME) as text or JSON,
// and writes exports.pprof as that difference. Returns the base report's
// time (for --html with --diff-from: the page opens on the two). With
// --diff BASE, `html` (when given) is set to the difference for the page.
// Throws MemtopError for a base that is not there (not a recording, no
// report at TIME).
int64_t show_diff(Recording& rec, const std::string& file, const ChosenReport& now, const ReportQuery& q, bool json,
                  const ExportFiles& exports, std::optional<HtmlDiff>* html = nullptr);

// --plot OUT.svg: the recording's memory over time (record/plot_svg.h),
// written whole (beside OUT, then renamed). Throws MemtopError naming OUT.
void write_plot(const Recording& rec, const std::string& file, const std::string& out);

}  // namespace memtop
