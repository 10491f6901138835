#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "aggregate/select.h"
#include "views/format.h"
#include "views/json.h"
#include "views/text.h"

using namespace memtop;

TEST_CASE("top_stacks keeps the largest outstanding stacks, stably ordered", "[report]") {
    std::vector<StackStats> in = {
        {1, 1, 10, 100, 1, 100, 1}, {1, 1, 11, 0, 0, 500, 5},  // fully freed: not a leak
        {2, 1, 12, 300, 3, 300, 3}, {1, 1, 13, 100, 2, 100, 2}, {3, 1, 14, 50, 1, 50, 1},
    };
    auto top = top_stacks(in, 3);
    REQUIRE(top.size() == 3);
    CHECK(top[0].stack_id == 12);
    CHECK(top[1].stack_id == 13);  // same bytes as 10, more allocations
    CHECK(top[2].stack_id == 10);
    CHECK(top_stacks(in, 100).size() == 4);
}

TEST_CASE("top_stacks with a focused process adds that process's own top stacks", "[report]") {
    std::vector<StackStats> in = {
        {1, 1, 10, 900, 1, 900, 1}, {2, 1, 11, 800, 1, 800, 1}, {3, 1, 12, 10, 1, 10, 1},
        {3, 1, 13, 20, 1, 20, 1},   {3, 1, 14, 5, 1, 5, 1},     {3, 1, 15, 0, 0, 7, 1},  // freed: still left out
    };
    auto top = top_stacks(in, 2, 3u);
    REQUIRE(top.size() == 4);
    CHECK(top[0].stack_id == 10);
    CHECK(top[1].stack_id == 11);
    CHECK(top[2].stack_id == 13);  // pid 3's two largest
    CHECK(top[3].stack_id == 12);
    // Already among the top: not listed twice.
    auto again = top_stacks(in, 2, 1u);
    CHECK(again.size() == 2);
    CHECK(top_stacks(in, 2, std::nullopt).size() == 2);
}

TEST_CASE("human_bytes", "[report]") {
    CHECK(human_bytes(0) == "0 B");
    CHECK(human_bytes(1023) == "1023 B");
    CHECK(human_bytes(1536) == "1.5 KiB");
    CHECK(human_bytes(-2048) == "-2.0 KiB");
    CHECK(human_bytes(5LL << 30) == "5.0 GiB");
}

TEST_CASE("JSON report has the documented shape, nulls for unknowns", "[report][json]") {
    Report r;
    r.time = std::chrono::system_clock::from_time_t(1795313400);  // 2026-11-22T02:10:00Z
    r.final = true;
    ProcessStats p;
    p.pid = 42;
    p.comm = "prog\"x";
    p.heap_bytes = 3000;
    p.heap_peak_bytes = 4000;
    p.allocs_total = 7;
    p.frees_total = 4;
    r.processes.push_back(p);
    ReportStack s;
    s.stats = {42, 1, 99, 3000, 3, 3000, 3};
    Frame known;
    known.address = 0x401136;
    known.function = "leak_malloc";
    known.offset = 0x1a;
    known.module = "/tmp/prog";
    known.file = "sites.c";
    known.line = 12;
    Frame unknown;
    unknown.address = 0x7f0000001000;
    s.frames = {known, unknown};
    r.stacks.push_back(s);
    r.lost[Lost::stack_map_full] = 2;
    r.self.rss_bytes = 12345678;
    r.self.rss_anon_bytes = 4567890;
    r.self.probes = 25;
    r.self.python_processes = 2;

    auto j = nlohmann::json::parse(render_json(r));
    CHECK(j["type"] == "report");
    CHECK(j["time"] == "2026-11-22T02:10:00Z");
    CHECK(j["final"] == true);
    CHECK(j["processes"][0]["pid"] == 42);
    CHECK(j["processes"][0]["comm"] == "prog\"x");
    CHECK(j["processes"][0]["heap_bytes"] == 3000);
    CHECK(j["processes"][0]["heap_peak_bytes"] == 4000);
    CHECK(j["processes"][0]["allocs_total"] == 7);
    CHECK(j["processes"][0]["frees_total"] == 4);
    auto st = j["stacks"][0];
    CHECK(st["pid"] == 42);
    CHECK(st["bytes"] == 3000);
    CHECK(st["allocs"] == 3);
    CHECK(st["alloc_bytes_total"] == 3000);
    CHECK(st["allocs_total"] == 3);
    CHECK(st["frames"][0]["address"] == "0x401136");
    CHECK(st["frames"][0]["function"] == "leak_malloc");
    CHECK(st["frames"][0]["offset"] == 0x1a);
    CHECK(st["frames"][0]["line"] == 12);
    CHECK(st["frames"][1]["function"].is_null());
    CHECK(st["frames"][1]["file"].is_null());
    CHECK(st["frames"][1]["line"].is_null());
    CHECK(j["lost"]["stack_map_full"] == 2);
    CHECK(j["lost"]["alloc_map_full"] == 0);
    CHECK(j["self"]["rss_bytes"] == 12345678);
    CHECK(j["self"]["rss_anon_bytes"] == 4567890);
    CHECK(j["self"]["probes"] == 25);
    CHECK(j["self"]["python_processes"] == 2);
    // One line: NDJSON.
    CHECK(render_json(r).find('\n') == std::string::npos);
}

TEST_CASE("text report lists processes, stacks and what was lost", "[report][text]") {
    Report r;
    ProcessStats p;
    p.pid = 7;
    p.comm = "leaky";
    p.heap_bytes = 2048;
    r.processes.push_back(p);
    r.lost[Lost::events_lost] = 3;
    auto t = render_text(r);
    CHECK(t.find("leaky") != std::string::npos);
    CHECK(t.find("2.0 KiB") != std::string::npos);
    CHECK(t.find("events lost 3") != std::string::npos);
    r.lost = {};
    CHECK(render_text(r).find("lost: nothing") != std::string::npos);
    // memtop's own line counts the CPythons with Python frames, when any.
    CHECK(render_text(r).find("Python frames in") == std::string::npos);
    r.self.python_processes = 2;
    CHECK(render_text(r).find(", Python frames in 2 processes") != std::string::npos);
    // Its resident memory, and how much of it is anonymous (not its files).
    r.self.rss_bytes = 48 << 20;
    r.self.rss_anon_bytes = 20 << 20;
    CHECK(render_text(r).find("memtop itself: 48.0 MiB resident (20.0 MiB anonymous), ") != std::string::npos);
}

TEST_CASE("text report titles its stacks by the order they were chosen in", "[report][text][sort]") {
    Report r;
    ReportStack s;
    s.stats = {42, 1, 99, 3000, 3, 3000, 3};
    r.stacks.push_back(s);
    CHECK(render_text(r).find("\nTop stacks by outstanding bytes:\n") != std::string::npos);
    r.stack_order = StackOrder::Allocations;
    CHECK(render_text(r).find("\nTop stacks by allocations in all (freed or not):\n") != std::string::npos);
    r.stacks.clear();
    CHECK(render_text(r).find("Top stacks by") == std::string::npos);
}

TEST_CASE("perf maps refused or read in part are in the JSON and text reports", "[report][json][text]") {
    Report r;
    PerfMapNote refused;
    refused.pid = 12;
    refused.file = "/tmp/perf-12.map";
    refused.rejected = "a symlink (not followed)";
    PerfMapNote partly;
    partly.pid = 13;
    partly.file = "/tmp/perf-13.map";
    partly.lines_used = 40;
    partly.lines_malformed = 2;
    partly.lines_absurd = 3;
    partly.lines_overlapping = 4;
    partly.bytes_unread = 5 << 20;
    PerfMapNote clean;
    clean.pid = 14;
    clean.file = "/tmp/perf-14.map";
    clean.lines_used = 9;
    r.perf_maps = {refused, partly, clean};

    auto j = nlohmann::json::parse(render_json(r));
    REQUIRE(j["perf_maps"].size() == 3);
    CHECK(j["perf_maps"][0]["pid"] == 12);
    CHECK(j["perf_maps"][0]["file"] == "/tmp/perf-12.map");
    CHECK(j["perf_maps"][0]["rejected"] == "a symlink (not followed)");
    CHECK(j["perf_maps"][0]["lines_used"] == 0);
    CHECK(j["perf_maps"][1]["rejected"].is_null());
    CHECK(j["perf_maps"][1]["lines_used"] == 40);
    CHECK(j["perf_maps"][1]["lines_malformed"] == 2);
    CHECK(j["perf_maps"][1]["lines_absurd"] == 3);
    CHECK(j["perf_maps"][1]["lines_overlapping"] == 4);
    CHECK(j["perf_maps"][1]["bytes_unread"] == 5 << 20);
    CHECK(j["perf_maps"][2]["rejected"].is_null());

    const std::string t = render_text(r);
    CHECK(t.find("perf map /tmp/perf-12.map (pid 12): rejected: a symlink (not followed)\n") != std::string::npos);
    CHECK(t.find("perf map /tmp/perf-13.map (pid 13): 2 lines skipped as malformed, 3 skipped as absurd (size 0 or "
                 "over 1 GiB, or past user space), 4 overlapping earlier ones (the later names the code), 5.0 MiB "
                 "past 64 MiB not read\n") != std::string::npos);
    CHECK(t.find("perf-14.map") == std::string::npos);  // wholly used: nothing to say
    // None found: the JSON list is there and empty.
    CHECK(nlohmann::json::parse(render_json(Report{}))["perf_maps"].empty());
}

TEST_CASE("files whose symbols could not be read are in the JSON and text reports", "[report][json][text]") {
    Report r;
    r.symbol_files = {{"/srv/app/bin", "DWARF unreadable (the unit at .debug_info offset 0)"}};
    auto j = nlohmann::json::parse(render_json(r));
    REQUIRE(j["symbol_files"].size() == 1);
    CHECK(j["symbol_files"][0]["file"] == "/srv/app/bin");
    CHECK(j["symbol_files"][0]["problem"] == "DWARF unreadable (the unit at .debug_info offset 0)");
    CHECK(render_text(r).find("symbols of /srv/app/bin: DWARF unreadable (the unit at .debug_info offset 0)\n") !=
          std::string::npos);
    CHECK(nlohmann::json::parse(render_json(Report{}))["symbol_files"].empty());
}

TEST_CASE("JSON: untraced processes have null heap columns, system columns when known", "[report][json]") {
    Report r;
    ProcessStats p;
    p.pid = 9;
    p.comm = "idle";
    p.heap_traced = false;
    RssStats rss;
    rss.anon = 4096;
    rss.file = 8192;
    rss.shmem = 0;
    rss.swap = 100;
    rss.peak = 20000;
    p.rss = rss;
    p.growth_bytes = -4096;
    p.has_identity = true;
    p.cgroup = "/system.slice/x.service";
    p.nspid = 1;
    r.processes.push_back(p);
    auto j = nlohmann::json::parse(render_json(r))["processes"][0];
    CHECK(j["heap_bytes"].is_null());
    CHECK(j["allocs_total"].is_null());
    CHECK(j["rss_bytes"] == 12288);
    CHECK(j["rss_peak_bytes"] == 20000);
    CHECK(j["swap_bytes"] == 100);
    CHECK(j["growth_bytes"] == -4096);
    CHECK(j["container"].is_null());
    CHECK(j["nspid"] == 1);
    CHECK(j["cgroup"] == "/system.slice/x.service");
    // The text view switches to the system table.
    auto t = render_text(r);
    CHECK(t.find("RSS PEAK") != std::string::npos);
    CHECK(t.find("idle") != std::string::npos);
}
