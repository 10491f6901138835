// The HTML report (--html OUT): one self-contained page, opened offline,
// with memory over time per process, an interactive flame graph of each
// report's stacks, and the tables (docs/exports.md). The page's script and
// style (html_report.html, embedded at build time) draw it from one JSON
// object; this file builds that object from a run.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/report.h"

namespace memtop {

// The page's moments (reports with their stacks, as JSON text) are kept up
// to this many bytes; past it, every other one is left out (their
// numbers stay in the chart), so that the page of an hour's recording
// still opens in a browser and memtop's memory stays bounded.
inline constexpr size_t kHtmlMomentBudget = size_t{64} << 20;

// `memtop report NEW --diff BASE --html OUT`: NEW's report minus another
// recording's, as --diff computes it (record/diff.h), shown by the page as
// the base "BASE" of the moment it was computed for.
struct HtmlDiff {
    int64_t now_ns = 0;   // the time of NEW's report (one of the page's moments)
    std::string label;    // BASE's side, as the text diff names it: "FILE, report N of M, made at ..."
    Report change;        // diff_as_report(): every changed stack, its numbers now minus BASE
    std::string summary;  // one line: the totals, as the text diff's
};

// The page's data, built one observation at a time: a long recording is read
// once and never held. The time series are plain numbers per process and
// observation; each moment the page holds is its JSON text, made when it is
// added (frames as indexes into one shared table).
class HtmlPage {
public:
    explicit HtmlPage(size_t moment_budget = kHtmlMomentBudget) : budget_(moment_budget) {}

    nlohmann::json meta = nlohmann::json::object();  // the run's metadata (a recording's header)
    std::string source;                              // "recording FILE" or "live run"
    std::string problem;                             // why a recording did not read to its end
    std::optional<int64_t> view_ns, view_base_ns;    // the moments the page opens on (report times)

    // An observation's time (a sample with no process still starts the time axis).
    void time(int64_t t_ns) { t0_ = std::min(t0_, t_ns); }
    // One process's numbers at t_ns; nullopt where the source does not say
    // (python: its Python domain's bytes, for a process that has one).
    void point(int64_t t_ns, uint32_t pid, uint32_t epoch, const std::string* comm, std::optional<int64_t> heap,
               std::optional<int64_t> heap_peak, std::optional<int64_t> rss, std::optional<int64_t> mapped,
               std::optional<int64_t> python = std::nullopt);
    // A sample record's processes ({"time_ns", "processes": [...]}).
    void sample(const nlohmann::json& s);
    // A report's processes as points (heap, peak, RSS, mapped), and its time.
    void report_points(int64_t t_ns, const std::vector<ProcessStats>& processes);

    // Whether the report numbered `index` (0-based among the run's reports)
    // would be kept as a moment if added now: `pinned` ones always are.
    bool keeps(size_t index, bool pinned) const { return pinned || index % stride_ == 0; }
    // Report `index` as a moment (call report_points for its numbers too).
    // When the moments pass the budget, every other unpinned one is dropped.
    void moment(size_t index, Report r, bool pinned);
    // Report `index` was read and is not a moment (keeps() said no).
    void passed(size_t index) { seen_ = std::max(seen_, index + 1); }
    size_t moments_held() const { return moments_.size(); }
    size_t moments_seen() const { return seen_; }

    // --diff BASE: the page offers `d` as the base of its moment at d.now_ns.
    void set_diff(const HtmlDiff& d);

    // The JSON object the page draws (memtop-data), '<' not yet escaped.
    std::string data() const;
    // The whole page, the data inlined with every '<' escaped.
    std::string render() const;

private:
    struct Point {
        int64_t t;
        int64_t v[5];  // heap, heap peak, RSS, mapped, Python domain
        uint8_t has;   // bit i: v[i] is known
    };
    struct Series {
        std::string comm;
        std::vector<Point> points;
    };
    struct Moment {
        size_t index;
        bool pinned;
        int64_t t;
        std::string head, tail;  // its JSON before and after "t_ns" (known at the end)
    };
    class Frames {
    public:
        int id(const std::string& name, const std::string& at, const std::string& module);
        const nlohmann::json& rows() const { return rows_; }

    private:
        std::map<std::tuple<std::string, std::string, std::string>, int> ids_;
        nlohmann::json rows_ = nlohmann::json::array();
    };
    nlohmann::json stacks_json(const std::vector<ReportStack>& stacks);
    void thin();
    void write_data(std::string& out, bool escape) const;

    size_t budget_;
    size_t stride_ = 1, bytes_ = 0, seen_ = 0;
    int64_t t0_ = INT64_MAX;
    std::map<std::pair<uint32_t, uint32_t>, Series> series_;
    std::vector<Moment> moments_;
    std::optional<nlohmann::json> diff_;  // --diff BASE: its stacks made with the shared frames
    Frames frames_;
};

// What a live run without --record (or a test) holds: every sample and
// every report, in memory.
struct HtmlRun {
    // The run's metadata: a recording's header (argv, host, kernel, start,
    // mode, interval, ...), or the same fields made by a live run.
    nlohmann::json meta = nlohmann::json::object();
    // Time-series samples, in time order, in the recording's "sample" record
    // shape: {"time_ns", "processes": [{"pid", "epoch", "heap_bytes",
    // "heap_peak_bytes", ..., "py_bytes"}]}. Reports add their processes' numbers too.
    std::vector<nlohmann::json> samples;
    // The moments the flame graph can show, in time order; each one's
    // all_stacks (every heap stack) when it has them, else its top stacks.
    std::vector<Report> reports;
    // The moment the page opens on (a report's time, ns; the last report
    // when unset), and the report it is shown minus (`memtop report FILE
    // --diff-from TIME --html OUT`: what changed between the two).
    std::optional<int64_t> view_ns, view_base_ns;
    std::optional<HtmlDiff> diff;
    std::string source;   // "recording FILE" or "live run"
    std::string problem;  // why a recording did not read to its end ("" if it did)
};

// A live run's point of the time series at report `r`, in the sample
// record's shape plus comm, rss_bytes and mapped_bytes where known.
nlohmann::json html_sample(const Report& r);

// The page of an HtmlRun (every report a moment, none thinned away).
HtmlPage html_page(const HtmlRun& run);

// The object the page draws: meta, series per process, one moment per
// report (processes, lost counters, stacks as indexes into a frame table).
nlohmann::json html_data(const HtmlRun& run);

// The whole page, the data inlined in a <script type="application/json">
// with every '<' escaped so that no name can end the script element.
std::string render_html(const HtmlRun& run);

}  // namespace memtop
