// --html: what the HTML report is drawn from, for a recording (memtop report
// FILE --html OUT, or a live run with --record) (session_html.cpp).
#pragma once

#include <string>

#include "record/recording.h"
#include "views/export/html.h"

namespace memtop {

// Every sample and every report that decodes; a report that does not is
// left out and said in `problem`, with the file's own problem.
HtmlRun html_run_from_recording(const Recording& rec, const std::string& path);

}  // namespace memtop
