// The HTML report's data (user/views/export/html.cpp): what the page is
// drawn from, and that no name can break out of the page's script element.
// Chromium draws real pages in the runtime tests ([html]).
#include <catch2/catch.hpp>

#include "views/export/html.h"

using namespace memtop;
using json = nlohmann::json;

namespace {

Frame frame(uint64_t addr, const char* fn, const char* file, int line) {
    Frame f;
    f.address = addr;
    f.function = fn;
    f.module = "/usr/bin/app";
    f.file = file;
    f.line = line;
    f.mapping = FrameMapping{0x400000, 0x500000, 0x1000, "abcdef01"};
    return f;
}

const std::string kHostile = "evil</script><script>window.pwned=1</script><!--";

Report report_at(int64_t sec, int64_t leak_bytes) {
    Report r;
    r.time = std::chrono::system_clock::time_point(std::chrono::seconds(sec));
    ProcessStats a;
    a.pid = 10, a.epoch = 1, a.comm = "app";
    a.heap_bytes = leak_bytes, a.heap_peak_bytes = leak_bytes + 100;
    a.rss = RssStats{4096, 8192, 0, 0, 12288};
    r.processes = {a};
    ReportStack leak;
    leak.stats = {10, 1, 7, leak_bytes, 3, 3000, 3};
    Frame site = frame(0x401234, "leak", "app.c", 20);
    site.inlined = {{"helper", "helper.h", 5}};
    leak.frames = {site, frame(0x401400, "main", "app.c", 40)};
    ReportStack hostile;
    hostile.stats = {10, 1, 8, 64, 1, 64, 1};
    hostile.frames = {frame(0x401300, kHostile.c_str(), "x.c", 1), frame(0x401400, "main", "app.c", 40)};
    ReportStack unstored;
    unstored.stats = {10, 1, 0, 50, 1, 50, 1};
    r.all_stacks = {leak, hostile, unstored};
    return r;
}

// The JSON between the data script element's tags, as the page reads it.
json page_data(const std::string& page) {
    const std::string open = "<script type=\"application/json\" id=\"memtop-data\">";
    auto at = page.find(open);
    REQUIRE(at != std::string::npos);
    at += open.size();
    auto end = page.find("</script>", at);
    REQUIRE(end != std::string::npos);
    return json::parse(page.substr(at, end - at));
}

}  // namespace

TEST_CASE("html: stacks as frame-table indexes, outermost first, inlined frames their own", "[html]") {
    HtmlRun run;
    run.meta = {{"mode", "command"}};
    run.source = "live run";
    run.reports = {report_at(1700000001, 3000)};
    json d = html_data(run);
    REQUIRE(d["moments"].size() == 1);
    const json& m = d["moments"][0];
    CHECK(m["exact"] == true);
    CHECK(m["all_stacks"] == true);
    REQUIRE(m["heap"].size() == 3);
    const json& leak = m["heap"][0];
    CHECK(leak[0] == 10);
    CHECK(leak[1] == 3000);
    CHECK(leak[2] == 3);
    CHECK(leak[3] == 3000);
    CHECK(leak[4] == 3);
    std::vector<std::string> names, at;
    for (const auto& id : leak[5]) {
        names.push_back(d["frames"][id.get<size_t>()][0]);
        at.push_back(d["frames"][id.get<size_t>()][1]);
    }
    CHECK(names == std::vector<std::string>{"main", "leak", "helper"});
    CHECK(at == std::vector<std::string>{"app.c:40", "app.c:20", "helper.h:5"});
    // main is one frame shared by both stacks.
    CHECK(m["heap"][1][5][0] == leak[5][0]);
    CHECK(d["frames"][m["heap"][2][5][0].get<size_t>()][0] == "[stack not stored]");
    // The report's own JSON, without its (heavy) stack lists.
    CHECK(m["report"]["processes"][0]["comm"] == "app");
    CHECK_FALSE(m["report"].contains("stacks"));
}

TEST_CASE("html: a series per process from samples and reports, in time order", "[html]") {
    HtmlRun run;
    run.reports = {report_at(1700000001, 3000), report_at(1700000002, 5000)};
    run.reports[1].lost[Lost::stack_map_full] = 2;
    for (int i = 0; i < 3; i++)
        run.samples.push_back({{"type", "sample"},
                               {"time_ns", (1700000000LL + i) * 1000000000LL + 500000000},
                               {"processes",
                                {{{"pid", 10},
                                  {"epoch", 1},
                                  {"heap_bytes", 100 * i},
                                  {"heap_peak_bytes", 900},
                                  {"py_bytes", 1000 + i}}}}});
    json d = html_data(run);
    CHECK(d["t0_ns"] == 1700000000500000000LL);
    REQUIRE(d["series"].size() == 1);
    const json& s = d["series"][0];
    CHECK(s["comm"] == "app");
    REQUIRE(s["points"].size() == 5);
    int64_t last = -1;
    for (const auto& p : s["points"]) {
        CHECK(p[0].get<int64_t>() > last);
        last = p[0];
    }
    // A sample: heap and peak, no RSS, its Python domain (--python-objects).
    // A report: RSS too; its process has no Python domain.
    CHECK(s["points"][0] == json::array({0, 0, 900, nullptr, nullptr, 1000}));
    CHECK(s["points"][1] == json::array({500000000, 3000, 3100, 12288, nullptr, nullptr}));
    CHECK(d["moments"][0]["exact"] == true);
    CHECK(d["moments"][1]["exact"] == false);
    CHECK(d["moments"][1]["t_ns"] == 1500000000);
}

TEST_CASE("html: a hostile frame name cannot close the data's script element", "[html]") {
    HtmlRun run;
    run.reports = {report_at(1700000001, 3000)};
    run.meta = {{"argv", {"memtop", "--", "</script>"}}};
    std::string page = render_html(run);
    CHECK(page.find("pwned") != std::string::npos);
    CHECK(page.find(kHostile) == std::string::npos);
    CHECK(page.find("<!--\"") == std::string::npos);
    // Exactly the page's own two script elements end.
    size_t ends = 0;
    for (size_t at = page.find("</script>"); at != std::string::npos; at = page.find("</script>", at + 1)) ends++;
    CHECK(ends == 2);
    json d = page_data(page);
    bool found = false;
    for (const auto& f : d["frames"]) found |= f[0] == kHostile;
    CHECK(found);
    CHECK(d["meta"]["argv"][2] == "</script>");
    // Nothing is fetched: no URL of any kind in the page.
    CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));
    CHECK(page.find("https://") == std::string::npos);
    CHECK(page.find("src=") == std::string::npos);
}

TEST_CASE("html: invalid UTF-8 in a name is replaced, not fatal", "[html]") {
    HtmlRun run;
    run.reports = {report_at(1700000001, 3000)};
    run.reports[0].all_stacks[0].frames[0].function = std::string("bad\xff\xfename");
    json d = page_data(render_html(run));
    CHECK(d["moments"].size() == 1);
}

TEST_CASE("html: past its budget the page holds evenly spaced moments, the pinned ones, and every point", "[html]") {
    // One moment is about a kilobyte here: the budget holds about ten.
    HtmlPage page(10000);
    const int64_t t0 = 1700000000;
    for (size_t i = 0; i < 100; i++) {
        Report r = report_at(t0 + static_cast<int64_t>(i), 3000 + static_cast<int64_t>(i));
        page.report_points((t0 + static_cast<int64_t>(i)) * 1000000000LL, r.processes);
        const bool pinned = i == 37 || i == 99;
        if (page.keeps(i, pinned))
            page.moment(i, r, pinned);
        else
            page.passed(i);
    }
    page.view_ns = (t0 + 37) * 1000000000LL;
    json d = json::parse(page.data());
    const size_t held = d["moments"].size();
    CHECK(held == page.moments_held());
    CHECK(held > 3);
    CHECK(held < 20);
    CHECK(page.moments_seen() == 100);
    CHECK(d["reports_in_recording"] == 100);
    std::vector<int64_t> unpinned;
    bool has37 = false, has99 = false;
    for (const auto& m : d["moments"]) {
        const int64_t i = m["time_ns"].get<int64_t>() / 1000000000LL - t0;
        has37 |= i == 37, has99 |= i == 99;
        if (i != 37 && i != 99) unpinned.push_back(i);
        // Each one whole: its stacks and its report.
        CHECK(m["heap"].size() == 3);
        CHECK(m["report"]["processes"][0]["heap_bytes"] == 3000 + i);
    }
    CHECK(has37);
    CHECK(has99);
    // Evenly spaced from the first report: multiples of one stride.
    REQUIRE(unpinned.size() >= 2);
    CHECK(unpinned[0] == 0);
    const int64_t stride = unpinned[1];
    CHECK(stride > 1);
    for (size_t k = 0; k < unpinned.size(); k++) CHECK(unpinned[k] == static_cast<int64_t>(k) * stride);
    // The chart keeps every report's numbers, held as a moment or not.
    REQUIRE(d["series"].size() == 1);
    CHECK(d["series"][0]["points"].size() == 100);
    CHECK(d["series"][0]["points"][99][1] == 3099);
    // The page opens on the pinned moment it was asked for.
    CHECK(d["moments"][d["view"]["moment"].get<size_t>()]["time_ns"] == (t0 + 37) * 1000000000LL);
}

TEST_CASE("html: another recording's diff (--diff BASE) is the base of its moment, with its exact numbers", "[html]") {
    HtmlRun run;
    run.reports = {report_at(1700000001, 3000), report_at(1700000002, 5000)};
    HtmlDiff diff;
    diff.now_ns = 1700000002LL * 1000000000LL;
    diff.label = "base.gz, report 3 of 3, made at +1.00 s";
    diff.summary = "Outstanding heap: +2000 B";
    ProcessStats gone;
    gone.pid = 77, gone.comm = "app";
    diff.change.processes = {gone};
    ReportStack grew;
    grew.stats = {77, 1, 1, 2000, 2, 2500, 3};
    grew.frames = run.reports[1].all_stacks[0].frames;
    ReportStack shrank;
    shrank.stats = {77, 1, 2, -64, -1, static_cast<uint64_t>(-128), static_cast<uint64_t>(-2)};
    shrank.frames = run.reports[1].all_stacks[1].frames;
    diff.change.all_stacks = {grew, shrank};
    run.diff = diff;
    run.view_ns = diff.now_ns;
    json d = html_data(run);
    REQUIRE(d.contains("diff"));
    CHECK(d["diff"]["moment"] == 1);
    CHECK(d["view"]["base"] == "diff");
    CHECK(d["view"]["moment"] == 1);
    CHECK(d["diff"]["label"] == diff.label);
    CHECK(d["diff"]["summary"] == diff.summary);
    CHECK(d["diff"]["comms"]["77"] == "app");
    const json& heap = d["diff"]["heap"];
    REQUIRE(heap.size() == 2);
    CHECK(heap[0][0] == 77);
    CHECK(heap[0][1] == 2000);
    CHECK(heap[0][2] == 2);
    CHECK(heap[0][3] == 2500);
    CHECK(heap[0][4] == 3);
    CHECK(heap[1][1] == -64);
    CHECK(heap[1][2] == -1);
    CHECK(heap[1][3] == -128);  // fewer allocated in all than BASE: negative, as diff_as_report holds it
    CHECK(heap[1][4] == -2);
    // Its frames are the shared table's, as the moments' are.
    CHECK(heap[0][5] == d["moments"][1]["heap"][0][5]);
    // Without a diff there is none (the page of a recording is as before).
    run.diff.reset();
    CHECK_FALSE(html_data(run).contains("diff"));
    CHECK_FALSE(html_data(run).contains("reports_in_recording"));  // every report held
}
