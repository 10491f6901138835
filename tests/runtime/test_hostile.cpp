// Hostile perf maps: /tmp/perf-PID.map is any file the traced process (or
// anyone who can write /tmp) puts there, and memtop reads it as root. A map
// of random bytes, a symlink to /etc/shadow, lines with absurd sizes and
// overlaps: memtop traces on, passes CMD's exit status through, names no
// frame from the bogus file, and its report says what it refused or skipped.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

// The report's perf_maps entry of pid, or null.
const json* perf_map_entry(const json& rep, int pid) {
    if (!rep.contains("perf_maps") || !rep["perf_maps"].is_array()) return nullptr;
    for (const auto& m : rep["perf_maps"])
        if (m.value("pid", -1) == pid) return &m;
    return nullptr;
}

// No frame of any stack of pid is named from its perf map.
void check_no_perf_map_frame(const json& rep, int pid) {
    const std::string label = "[perf-" + std::to_string(pid) + ".map]";
    for (const char* list : {"stacks", "growth_stacks", "mappings"}) {
        if (!rep.contains(list)) continue;
        for (const auto& s : rep[list]) {
            if (s.value("pid", -1) != pid) continue;
            for (const auto& f : s["frames"]) {
                INFO("frame: " << f.dump());
                CHECK(!(f["module"].is_string() && f["module"] == label));
            }
        }
    }
}

// The JIT_SIZE stack of pid: there, counted exactly, its first frame (the
// stub) not named at all.
void check_unnamed_stub(const json& rep, int pid) {
    INFO(describe_stacks(rep, pid));
    const json* st = stack_with_bytes(rep, pid, JIT_SIZE);
    REQUIRE(st);
    CHECK((*st)["allocs"] == 1);
    const json& f = (*st)["frames"];
    REQUIRE(f.size() >= 1);
    CHECK(f[0]["function"].is_null());
    check_no_perf_map_frame(rep, pid);
}

struct HostileRun {
    int pid = -1;
    std::optional<json> live;  // a report while the program ran, with its JIT_SIZE stack
    Run run;
};

// memtop -- jit_sites --wait --perf-map=KIND, driven through memtop's stdin
// as in test_jit.cpp: a report while the map is there, then the final one
// after the program removed it and exited.
HostileRun run_hostile(const std::string& kind) {
    HostileRun h;
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), {"--", prog_path("jit_sites"), "--wait", "--perf-map=" + kind});
    Child memtop;
    start_memtop(memtop, argv, true);
    memtop.lines_on_stderr = true;  // with --json, CMD's stdout is memtop's stderr
    h.pid = wait_ready({&memtop}, memtop);
    size_t from_err = 0, from = 0;
    go({&memtop}, memtop, "done", &from_err);
    auto live = wait_line(
        {&memtop}, memtop, false,
        [&](const std::string& l) {
            if (!starts_with(l, "{")) return false;
            json j = json::parse(l, nullptr, false);
            return !j.is_discarded() && stack_with_bytes(j, h.pid, JIT_SIZE) != nullptr &&
                   perf_map_entry(j, h.pid) != nullptr;
        },
        kTimeout, &from);
    if (live) h.live = json::parse(*live);
    memtop.close_stdin();
    h.run = stop_memtop({&memtop}, memtop, 0);
    return h;
}

void check_rejected(const json& rep, int pid, const std::string& why_prefix) {
    const json* m = perf_map_entry(rep, pid);
    INFO("perf_maps: " << (rep.contains("perf_maps") ? rep["perf_maps"].dump() : "absent"));
    REQUIRE(m);
    CHECK((*m)["file"] == "/tmp/perf-" + std::to_string(pid) + ".map");
    REQUIRE((*m)["rejected"].is_string());
    CHECK((*m)["rejected"].get<std::string>().rfind(why_prefix, 0) == 0);
    CHECK((*m)["lines_used"] == 0);
}

}  // namespace

TEST_CASE("A perf map of 50 MB of random bytes is rejected, and memtop traces on", "[bpf][jit][hostile]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("jit_sites"));
    HostileRun h = run_hostile("random");
    INFO(h.run.diag);
    CHECK(h.run.exit_code == JIT_HOSTILE_EXIT);
    REQUIRE(h.live);
    check_unnamed_stub(*h.live, h.pid);
    check_rejected(*h.live, h.pid, "not a perf map: ");
    REQUIRE(h.run.final_report);
    check_unnamed_stub(*h.run.final_report, h.pid);
    check_rejected(*h.run.final_report, h.pid, "not a perf map: ");
}

TEST_CASE("A perf map that is a symlink to /etc/shadow is rejected, and nothing of the file is shown",
          "[bpf][jit][hostile]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("jit_sites"));
    HostileRun h = run_hostile("shadow");
    INFO(h.run.diag);
    CHECK(h.run.exit_code == JIT_HOSTILE_EXIT);
    REQUIRE(h.live);
    check_unnamed_stub(*h.live, h.pid);
    check_rejected(*h.live, h.pid, "a symlink");
    REQUIRE(h.run.final_report);
    check_unnamed_stub(*h.run.final_report, h.pid);
    check_rejected(*h.run.final_report, h.pid, "a symlink");

    // No text of the file in any frame's name: its fields (user names,
    // password hashes) of 5 characters or more that are not plain numbers.
    std::ifstream in("/etc/shadow");
    if (!in) {
        WARN("no /etc/shadow here: its text is not looked for");
        return;
    }
    std::vector<std::string> secrets;
    std::string line;
    while (std::getline(in, line)) {
        std::stringstream fields(line);
        std::string f;
        while (std::getline(fields, f, ':'))
            if (f.size() >= 5 && f.find_first_not_of("0123456789") != std::string::npos) secrets.push_back(f);
    }
    for (const json* rep : {&*h.live, &*h.run.final_report})
        for (const char* list : {"stacks", "growth_stacks", "mappings"})
            for (const auto& s : (*rep)[list])
                for (const auto& fr : s["frames"]) {
                    if (!fr["function"].is_string()) continue;
                    const std::string name = fr["function"].get<std::string>();
                    for (const auto& secret : secrets) {
                        INFO("frame " << name);
                        CHECK(name.find(secret) == std::string::npos);
                    }
                }
}

TEST_CASE("Perf map lines with absurd sizes are skipped and overlaps counted, and the report says so",
          "[bpf][jit][hostile]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("jit_sites"));
    HostileRun h = run_hostile("absurd");
    INFO(h.run.diag);
    CHECK(h.run.exit_code == JIT_HOSTILE_EXIT);
    REQUIRE(h.live);
    REQUIRE(h.run.final_report);
    for (const json* rep : {&*h.live, &*h.run.final_report}) {
        check_unnamed_stub(*rep, h.pid);
        const json* m = perf_map_entry(*rep, h.pid);
        INFO("perf_maps: " << (rep->contains("perf_maps") ? (*rep)["perf_maps"].dump() : "absent"));
        REQUIRE(m);
        CHECK((*m)["rejected"].is_null());
        CHECK((*m)["lines_absurd"] == JIT_ABSURD_LINES);
        CHECK((*m)["lines_overlapping"] == JIT_OVERLAPPING_LINES);
        CHECK((*m)["lines_used"] == JIT_ABSURD_USED);
        CHECK((*m)["lines_malformed"] == 0);
        CHECK((*m)["bytes_unread"] == 0);
    }
}
