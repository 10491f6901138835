// --html: the HTML report of a recording (memtop report FILE --html OUT, or
// a live run with --record) (session_html.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "record/recording.h"
#include "views/export/html.h"

namespace memtop {

// The page of `rec` (read by read_recording), made in one more pass over
// the file: the time series from rec's points and every report's processes,
// and as moments the reports the page's budget holds (every one of a short
// recording; of a long one evenly spaced ones), always those at view_ns and
// base_ns (report times) and the last. A report that does not decode is
// left out and said in the page's problem, with the file's own problem.
HtmlPage html_page_from_recording(const Recording& rec, const std::string& path, std::optional<int64_t> view_ns,
                                  std::optional<int64_t> base_ns, size_t budget = kHtmlMomentBudget);

}  // namespace memtop
