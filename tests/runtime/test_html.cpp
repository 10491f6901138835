// --html OUT, in a real browser: Debian's chromium, headless, driven over
// CDP by tests/browser/check_html.js (puppeteer-core, installed by
// tools/test from tests/browser/package-lock.json). The page must load with
// no console error and no request, draw its chart and flame graph (pixels),
// zoom on a click, and show exactly expect.h's numbers per site of
// c_sites_fp: from a recording (`memtop report FILE --html`), at the end of
// a live run with and without --record, and with a hostile frame name.
// Screenshots stay in the build directory (MEMTOP_SCREENSHOT_DIR: build/tests/runtime). Tagged [host]:
// the kernel-matrix VMs have no browser.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>

#include <catch2/catch.hpp>

#include "browser.h"
#include "expect.h"
#include "harness.h"

using namespace rt;
using namespace std::chrono_literals;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/memtop-html-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string site_list() {
    std::string s;
    for (const auto& site : expect::c_sites)
        if (site.bytes) s += (s.empty() ? "" : ",") + std::string(site.function);
    return s + ",temp_malloc";  // all freed: only in "allocated in all"
}

json look_at(const std::string& page, const std::string& name) {
    return rt::look_at(page, name, site_list());
}

std::string grouped(long long v) {
    std::string s = std::to_string(v);
    for (int at = static_cast<int>(s.size()) - 3; at > 0; at -= 3) s.insert(static_cast<size_t>(at), ",");
    return s;
}

// What every page must show: loaded cleanly, drawn, zoomable, and each
// site's exact numbers in the flame graph, its tooltip and the top table.
void check_page(const json& seen) {
    INFO(seen.dump(1));
    CHECK(seen["errors"].empty());
    CHECK(seen["requests"].empty());  // nothing fetched, not even a favicon
    CHECK(seen["pwned"] == false);
    // The chart: data pixels beyond its axes, a peak marked.
    CHECK(seen["chart"]["ink"].get<long>() > seen["chart"]["axesInk"].get<long>() + 100);
    CHECK(seen["chart"]["dots"].get<int>() + seen["chart"]["lines"].get<int>() > 0);
    bool heap_peak = false;
    for (const auto& m : seen["chart"]["peaks"]) heap_peak |= m == "heap peak";
    CHECK(heap_peak);
    // The flame graph: frames, and pixels (a blank 1000-pixel-wide box has none).
    CHECK(seen["flame"]["frames"].get<int>() > 5);
    CHECK(seen["flame"]["ink"].get<long>() > 10000);
    for (const auto& site : expect::c_sites) {
        if (site.bytes == 0) continue;
        INFO("site " << site.function);
        const json& s = seen["sites"][site.function];
        CHECK(s["bytes"] == site.bytes);
        CHECK(s["allocs"] == site.allocs);
        CHECK(s["at"].get<std::string>().find("c_sites.c:") != std::string::npos);
        CHECK(s["tooltip"].get<std::string>().find("bytes: " + grouped(site.bytes) + " (") != std::string::npos);
        long long table = 0;
        for (const auto& v : s["table"]) table += v.get<long long>();
        CHECK(table == site.bytes);
        if (site.totals_equal) CHECK(seen["alloc"][site.function] == json::array({site.bytes, site.allocs}));
    }
    // temp_malloc freed everything: only "allocated in all" shows it.
    CHECK(seen["alloc"]["temp_malloc"] == json::array({C_TEMP_N * C_TEMP_SIZE, C_TEMP_N}));
    // A click on a frame: it spans the whole width after.
    CHECK(seen["zoom"]["before"].get<double>() < seen["zoom"]["svgWidth"].get<double>() - 10);
    CHECK(seen["zoom"]["width"].get<double>() == Approx(seen["zoom"]["svgWidth"].get<double>()).margin(1));
    CHECK(seen["zoom"]["resetFrames"] == seen["flame"]["frames"]);
    // Search: the frame found, and the bytes under it.
    CHECK(seen["search"]["matches"].get<int>() >= 1);
    CHECK(seen["search"]["bytes"] == expect::c_sites[0].bytes);
    for (const auto& n : seen["momentFrames"]) CHECK(n.get<int>() >= 0);
    CHECK(seen["tables"]["processes"].get<int>() >= 1);
    CHECK(seen["tables"]["lost"].get<int>() >= 8);
    CHECK(seen["tables"]["exact"] == true);
}

}  // namespace

TEST_CASE("--html from a recording: chromium shows the time series, every report, exact numbers per site",
          "[bpf][html][record][host]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_BROWSER();
    TempDir dir;
    const std::string rec = dir.path + "/run.gz", live = dir.path + "/live.html", page = dir.path + "/report.html";
    Child prog, memtop;
    const int pid = start_prog(prog, {prog_path("c_sites_fp"), "--wait"});
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--record", rec, "--record-interval", "0.05", "--html", live});
    start_memtop(memtop, argv);
    wait_tracing({&prog, &memtop}, memtop, {pid});
    // A report before the program allocates: the base of "between two moments".
    size_t seen_reports = 0;
    REQUIRE(next_report({&prog, &memtop}, memtop, seen_reports));
    go({&prog, &memtop}, prog);
    REQUIRE(report_until({&prog, &memtop}, memtop, seen_reports,
                         [&](const json& r) { return proc_stats(r, pid).heap_bytes == C_TOTAL_BYTES; }));
    REQUIRE(next_report({&prog, &memtop}, memtop, seen_reports));
    Run run = stop_memtop({&prog, &memtop}, memtop, SIGINT);
    INFO(run.diag);
    REQUIRE(run.exit_code == 0);
    CHECK(end_prog({&prog}, prog) == 0);

    Run rep = run_memtop({memtop_path(), "report", rec, "--html", page});
    INFO(rep.diag);
    REQUIRE(rep.exit_code == 0);
    json seen = look_at(page, "html-recording");
    check_page(seen);
    // Every report of the run is a moment; the samples draw lines.
    CHECK(seen["moments"] == run.reports().size());
    CHECK(seen["chart"]["moments"] == run.reports().size());
    CHECK(seen["chart"]["lines"].get<int>() > 0);
    // The last report minus the first (before the program allocated):
    // exactly each site's bytes.
    for (const auto& site : expect::c_sites) {
        if (site.bytes == 0) continue;
        INFO("site " << site.function);
        CHECK(seen["between"][site.function] == json::array({site.bytes, site.allocs}));
    }
    // The live run's own page, drawn from its recording at the end.
    json seen_live = look_at(live, "html-live-recorded");
    check_page(seen_live);
    CHECK(seen_live["moments"] == run.reports().size());
}

TEST_CASE("--html at the end of a live run without --record: the final report's stacks, exact", "[bpf][html][host]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_BROWSER();
    TempDir dir;
    const std::string page = dir.path + "/live.html";
    Run r = run_memtop_cmd({prog_path("c_sites_fp")}, {"--html", page});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    json seen = look_at(page, "html-live");
    check_page(seen);
    CHECK(seen["moments"] == 1);
    CHECK(seen["chart"]["moments"] == 1);
}

TEST_CASE("--html: a frame named </script><script>... is shown as a name, never run", "[bpf][html][host]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_BROWSER();
    TempDir dir;
    const std::string rec = dir.path + "/run.gz", evil = dir.path + "/evil.gz", page = dir.path + "/evil.html";
    Run r = run_memtop_cmd({prog_path("c_sites_fp")}, {"--record", rec});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    // leak_calloc renamed in the recording (symbols are whatever bytes a
    // binary holds): the name would end the data's script element and run
    // its own if it were not escaped.
    const std::string hostile = "</script><script>window.pwned=1</script><!--";
    REQUIRE(std::system(("zcat '" + rec + "' | sed 's|\"leak_calloc\"|\"" + hostile + "\"|g' | gzip > '" + evil + "'")
                            .c_str()) == 0);
    Run rep = run_memtop({memtop_path(), "report", evil, "--html", page});
    INFO(rep.diag);
    REQUIRE(rep.exit_code == 0);
    json seen = look_at(page, "html-hostile", "leak_malloc," + hostile);
    INFO(seen.dump(1));
    CHECK(seen["errors"].empty());
    CHECK(seen["pwned"] == false);
    CHECK(seen["sites"][hostile]["bytes"] == C_LEAK_CALLOC_BYTES);
    CHECK(seen["sites"]["leak_malloc"]["bytes"] == C_LEAK_MALLOC_BYTES);
}
