// --plot (record/plot_svg.h): the series are the recording's numbers, and
// the SVG draws them where its axes say.
#include <regex>

#include <catch2/catch.hpp>

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
