// --cgroup and --container: heap tracing for every process of a cgroup,
// those started later included, and none outside it. A process in its own
// pid namespace and a container-like cgroup shows its identity.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "cgroup.h"
#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

void check_c_sites_totals(const json& rep, int pid) {
    ProcStats p = proc_stats(rep, pid);
    INFO(describe_stacks(rep, pid));
    REQUIRE(p.found);
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == C_PEAK_BYTES);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
    CHECK(p.frees_total == C_FREES_TOTAL);
    CHECK(sum_frame0(rep, pid, "leak_malloc").bytes == C_LEAK_MALLOC_BYTES);
}

}  // namespace

TEST_CASE("--cgroup traces the cgroup's processes, later ones too, and nothing outside", "[bpf][cgroup]") {
    RT_REQUIRE_ENV();
    TestCgroup cg("app");
    // The attach protocol with --cgroup for -p, and a program started after
    // memtop traces: run_attached's steps.
    Child inside, outside, later, memtop;
    const int in_pid = start_prog(inside, cg.run({prog_path("c_sites_fp"), "--wait"}));
    const int out_pid = start_prog(outside, {prog_path("c_sites_fp"), "--wait"}, {&inside});

    auto args = memtop_base_args();
    args.insert(args.end(), {"--cgroup", cg.name, "--exact"});
    start_memtop(memtop, args);
    std::vector<Child*> all{&memtop, &inside, &outside};
    wait_memtop_ready(all, memtop, "memtop: tracing cgroup");

    // Started after memtop attached: traced from its first allocation.
    const int later_pid = start_prog(later, cg.run({prog_path("c_sites_fp"), "--wait"}), all);
    all.push_back(&later);
    go(all, inside);
    go(all, outside);
    go(all, later);

    Run r = stop_memtop(all, memtop, SIGINT);
    for (Child* c : {&inside, &outside, &later}) end_prog({c}, *c);
    INFO(r.diag);
    REQUIRE(r.final_report);
    check_c_sites_totals(*r.final_report, in_pid);
    check_c_sites_totals(*r.final_report, later_pid);
    CHECK_FALSE(proc_stats(*r.final_report, out_pid).found);
    for (const auto& p : (*r.final_report)["processes"]) CHECK((p["pid"] == in_pid || p["pid"] == later_pid));
}

TEST_CASE("--container finds the container's cgroup from its id; unknown ids and cgroups fail clearly",
          "[bpf][cgroup][container]") {
    RT_REQUIRE_ENV();
    // A cgroup named the way Docker's systemd driver names its scopes.
    const std::string id = "c0ffee" + std::string(58, '1');
    TestCgroup cg("docker-" + id + ".scope");
    Child app, memtop;
    // Its own pid namespace too: the report shows the pid it sees itself.
    const int pid = start_prog(app, cg.run({"unshare", "-p", "-f", "--kill-child", prog_path("c_sites_fp"), "--wait"}));

    auto args = memtop_base_args();
    args.insert(args.end(), {"--container", id.substr(0, 12), "--exact"});
    start_memtop(memtop, args);
    std::vector<Child*> all{&memtop, &app};
    {
        auto tracing = wait_line(all, memtop, true, [&](const std::string& l) {
            return starts_with(l, "memtop: tracing cgroup") && l.find(id) != std::string::npos;
        });
        INFO(memtop.describe(3));
        REQUIRE(tracing);
    }
    (void)pid;  // the pid printed by the program is its namespace pid (1)
    go(all, app);
    Run r = stop_memtop(all, memtop, SIGINT);
    end_prog({&app}, app);
    INFO(r.diag);
    REQUIRE(r.final_report);
    // The one process traced is the program (unshare's child), known by comm.
    ProcStats p = proc_by_comm(*r.final_report, "c_sites_fp");
    REQUIRE(p.found);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
    CHECK(p.heap_bytes == C_TOTAL_BYTES);

    // Failures: one line, a documented status, nothing loaded.
    Run bad = run_memtop_cmd({}, {"--container", "feedfacefeedface"});
    CHECK(bad.exit_code == 5);
    bool said = false;
    for (const auto& l : bad.err_lines)
        said =
            said || l.find("trace container feedfacefeedface: no running process belongs to it") != std::string::npos;
    CHECK(said);
    Run bad2 = run_memtop_cmd({}, {"--cgroup", "memtop-no-such-cgroup"});
    CHECK(bad2.exit_code == 5);
    said = false;
    for (const auto& l : bad2.err_lines)
        said = said || l.find("trace cgroup memtop-no-such-cgroup: no such cgroup") != std::string::npos;
    CHECK(said);
}

TEST_CASE("system view: a process in its own mount and pid namespace shows its container and inner pid",
          "[bpf][system][container]") {
    RT_REQUIRE_ENV();
    const std::string id = "beef" + std::string(60, '2');
    TestCgroup cg("docker-" + id + ".scope");
    Child app, memtop;
    start_memtop(memtop, {memtop_path(), "--json", "-d", "1"});
    wait_memtop_ready({&memtop}, memtop, "memtop: watching");
    const int inner = start_prog(
        app, cg.run({"unshare", "-m", "-p", "-f", "--mount-proc", "--kill-child", prog_path("c_sites_fp"), "--wait"}),
        {&memtop});
    CHECK(inner == 1);  // the first process of its pid namespace

    // A report after it started names it, by container.
    std::vector<Child*> all{&memtop, &app};
    auto in_container = [&](const json& r) -> const json* {
        auto ps = r.find("processes");
        if (ps == r.end()) return nullptr;
        for (const auto& p : *ps)
            if (p.value("comm", "") == "c_sites_fp" && p.contains("container") && p["container"] == id) return &p;
        return nullptr;
    };
    size_t seen = memtop.out_lines.size();
    std::string last = "no report";
    auto rep = report_until(
        all, memtop, seen, [&](const json& r) { return in_container(r) != nullptr; }, &last, 10);
    INFO(last.substr(0, 2000));
    REQUIRE(rep);
    const json* found = in_container(*rep);
    REQUIRE(found);
    CHECK((*found)["nspid"] == 1);
    CHECK((*found)["pid"] != 1);
    CHECK((*found)["cgroup"].is_string());  // the v1 memory path on hybrid hosts, the v2 one elsewhere

    app.close_stdin();
    stop_memtop(all, memtop, SIGINT);
}
