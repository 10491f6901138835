// The HTML report (--html OUT): one self-contained page, opened offline,
// with memory over time per process, an interactive flame graph of each
// report's stacks, and the tables (docs/exports.md). The page's script and
// style (html_report.html, embedded at build time) draw it from one JSON
// object; this file builds that object from a run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/report.h"

namespace memtop {

struct HtmlRun {
    // The run's metadata: a recording's header (argv, host, kernel, start,
    // mode, interval, ...), or the same fields made by a live run.
    nlohmann::json meta = nlohmann::json::object();
    // Time-series samples, in time order, in the recording's "sample" record
    // shape: {"time_ns", "processes": [{"pid", "epoch", "heap_bytes",
    // "heap_peak_bytes", ...}]}. Reports add their processes' numbers too.
    std::vector<nlohmann::json> samples;
    // The moments the flame graph can show, in time order; each one's
    // all_stacks (every heap stack) when it has them, else its top stacks.
    std::vector<Report> reports;
    // The moment the page opens on (a report's time, ns; the last report
    // when unset), and the report it is shown minus (`memtop report FILE
    // --diff-from TIME --html OUT`: what changed between the two).
    std::optional<int64_t> view_ns, view_base_ns;
    std::string source;   // "recording FILE" or "live run"
    std::string problem;  // why a recording did not read to its end ("" if it did)
};

// A live run's point of the time series at report `r`, in the sample
// record's shape plus comm, rss_bytes and mapped_bytes where known.
nlohmann::json html_sample(const Report& r);

// The object the page draws: meta, series per process, one moment per
// report (processes, lost counters, stacks as indexes into a frame table).
nlohmann::json html_data(const HtmlRun& run);

// The whole page, the data inlined in a <script type="application/json">
// with every '<' escaped so that no name can end the script element.
std::string render_html(const HtmlRun& run);

}  // namespace memtop
