// --plot (record/plot_svg.h): the series are the recording's numbers, and
// the SVG draws them where its axes say.
#include <regex>

#include <catch2/catch.hpp>

#include "record/moments.h"
#include "record/plot_svg.h"
#include "record/report_codec.h"

using namespace memtop;
using nlohmann::json;

namespace {

constexpr int64_t kStart = 1700000000000000000, kSec = 1000000000;

json sample(int64_t t, uint32_t pid, int64_t heap) {
    return {{"type", "sample"},
            {"time_ns", t},
            {"processes", json::array({{{"pid", pid}, {"epoch", 1}, {"heap_bytes", heap}}})}};
}

json report(int64_t t, uint32_t pid, int64_t heap, int64_t anon) {
    Report r;
    r.time = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(t)));
    ProcessStats p;
    p.pid = pid, p.epoch = 1, p.comm = "a<b", p.heap_bytes = heap;
    p.rss = RssStats{1000, anon, 0, 0, 0};
    r.processes = {p};
    return {{"type", "report"}, {"report", encode_report(r)}};
}

Recording recording() {
    return recording_of({{"type", "memtop-recording"}, {"version", 1}, {"start_ns", kStart}},
                        {sample(kStart + kSec / 10, 7, 1000), sample(kStart + 2 * kSec / 10, 7, 50000),
                         report(kStart + kSec, 7, 20000, 90000), sample(kStart + 2 * kSec, 7, 30000),
                         sample(kStart + 2 * kSec, 9, 10)});
}

}  // namespace

TEST_CASE("plot: each process's heap and RSS series, the highest peak first", "[record][plot]") {
    auto series = memory_series(recording());
    REQUIRE(series.size() == 2);
    const ProcessSeries& s = series[0];
    CHECK(s.pid == 7);
    CHECK(s.comm == "a<b");
    REQUIRE(s.heap.size() == 4);  // three samples and the report, in time order
    CHECK(s.heap[1].bytes == 50000);
    CHECK(s.heap[2].bytes == 20000);
    CHECK(s.heap[2].t_ns == kStart + kSec);
    REQUIRE(s.rss.size() == 1);
    CHECK(s.rss[0].bytes == 91000);  // file + anon + shmem
    CHECK(s.peak() == 50000);
    CHECK(series[1].pid == 9);
}

TEST_CASE("plot: the SVG's lines are at the recording's values, the peak marked", "[record][plot]") {
    const std::string svg = render_plot_svg(recording(), "t & t");
    CHECK(svg.rfind("<?xml", 0) == 0);
    CHECK(svg.find("<title>t &amp; t</title>") != std::string::npos);
    CHECK(svg.find("a&lt;b (7)") != std::string::npos);

    std::smatch m;
    REQUIRE(std::regex_search(svg, m,
                              std::regex("<polyline class=\"heap\" data-pid=\"7\" data-values=\"([^\"]*)\"[^>]*"
                                         "points=\"([^\"]*)\"")));
    CHECK(m[1] == "0.10:1000 0.20:50000 1.00:20000 2.00:30000");
    // y of each point against the axis: the plot spans y 40..450 for
    // 0..y_max, y_max the next tick step (20 KiB, for about 5 ticks) above
    // 1.05 x the largest value (91000 B, RSS): 102400.
    std::vector<double> ys;
    std::string pts = m[2];
    std::regex pt("([0-9.]+),([0-9.]+)");
    for (auto it = std::sregex_iterator(pts.begin(), pts.end(), pt); it != std::sregex_iterator(); ++it)
        ys.push_back(std::stod((*it)[2]));
    REQUIRE(ys.size() == 4);
    const double y_max = 102400, top = 40, height = 410;
    const double expect[] = {1000, 50000, 20000, 30000};
    for (size_t i = 0; i < 4; i++) CHECK(ys[i] == Approx(top + height - height * expect[i] / y_max).margin(0.01));
    CHECK(svg.find("<circle class=\"peak\" data-pid=\"7\" data-bytes=\"50000\"") != std::string::npos);
    CHECK(svg.find("peak heap 50000 B (48.8 KiB) at +0.20 s") != std::string::npos);
    CHECK(svg.find("<polyline class=\"rss\" data-pid=\"7\" data-values=\"1.00:91000\"") != std::string::npos);
}

namespace {

// A version 3 recording of a CPython with the Python domain: its samples'
// py_bytes, and its reports' processes' py_* (a process whose object
// allocator never allocated, pid 9, has none).
Recording python_recording() {
    auto py_sample = [](int64_t t, int64_t heap, int64_t py, int64_t py_peak) {
        return json{
            {"type", "sample"},
            {"time_ns", t},
            {"processes",
             json::array(
                 {{{"pid", 7u}, {"epoch", 1u}, {"heap_bytes", heap}, {"py_bytes", py}, {"py_peak_bytes", py_peak}}})}};
    };
    auto py_report = [](int64_t t, int64_t py, uint64_t allocs_total) {
        Report r;
        r.time = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(t)));
        ProcessStats p;
        p.pid = 7, p.epoch = 1, p.comm = "python3.11", p.heap_bytes = 500;
        p.py_bytes = py, p.py_peak_bytes = 3000000, p.py_allocs_total = allocs_total;
        ProcessStats other;
        other.pid = 9, other.epoch = 1, other.comm = "sh", other.heap_bytes = 10;
        r.processes = {p, other};
        return json{{"type", "report"}, {"report", encode_report(r)}};
    };
    return recording_of(
        {{"type", "memtop-recording"}, {"version", 3}, {"start_ns", kStart}},
        {py_sample(kStart + kSec / 10, 400, 100000, 100000), py_sample(kStart + 2 * kSec / 10, 450, 3000000, 3000000),
         py_report(kStart + kSec, 2000, 99), py_sample(kStart + 2 * kSec, 500, 1500, 3000000)});
}

}  // namespace

TEST_CASE("plot: the Python domain's series beside the heap's, its peak marked apart", "[record][plot][python]") {
    const Recording rec = python_recording();
    auto series = memory_series(rec);
    REQUIRE(series.size() == 2);
    const ProcessSeries& s = series[0];
    CHECK(s.pid == 7);
    REQUIRE(s.python.size() == 4);  // three samples and the report, in time order
    CHECK(s.python[0].bytes == 100000);
    CHECK(s.python[1].bytes == 3000000);
    CHECK(s.python[2].bytes == 2000);
    CHECK(s.python[2].t_ns == kStart + kSec);
    CHECK(s.python[3].bytes == 1500);
    CHECK(s.heap.size() == 4);
    CHECK(series[1].pid == 9);
    CHECK(series[1].python.empty());  // its report lists py_* as 0: no domain

    const std::string svg = render_plot_svg(rec, "py");
    std::smatch m;
    REQUIRE(
        std::regex_search(svg, m, std::regex("<polyline class=\"python\" data-pid=\"7\" data-values=\"([^\"]*)\"")));
    CHECK(m[1] == "0.10:100000 0.20:3000000 1.00:2000 2.00:1500");
    CHECK(svg.find("<polyline class=\"python\" data-pid=\"9\"") == std::string::npos);
    CHECK(svg.find("<rect class=\"peak-python\" data-pid=\"7\" data-bytes=\"3000000\"") != std::string::npos);
    CHECK(svg.find("peak python 3000000 B") != std::string::npos);
    CHECK(svg.find("dotted: Python") != std::string::npos);
    // The heap's peak is still the heap's (500 B), not the Python domain's.
    CHECK(svg.find("<circle class=\"peak\" data-pid=\"7\" data-bytes=\"500\"") != std::string::npos);

    // A recording without the domain (version 2, the recording above) draws no Python line.
    const std::string old = render_plot_svg(recording(), "old");
    CHECK(old.find("class=\"python\"") == std::string::npos);
    CHECK(old.find("dotted: Python") == std::string::npos);

    // --peak-python: the highest py_bytes (a sample's), the report nearest it.
    auto peak = heap_peak(rec, std::nullopt, PeakOf::Python);
    REQUIRE(peak);
    CHECK(peak->pid == 7);
    CHECK(peak->heap_bytes == 3000000);
    CHECK(peak->time_ns == kStart + 2 * kSec / 10);
    CHECK(peak->until_ns == kStart + 2 * kSec / 10);
    CHECK(peak->report_ns == kStart + kSec);
    CHECK_FALSE(heap_peak(rec, 9u, PeakOf::Python));
    CHECK_FALSE(heap_peak(recording(), std::nullopt, PeakOf::Python));
}
