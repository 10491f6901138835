// Targets are always listed: a -p target that has not allocated since memtop
// attached, and a CMD that never allocates, appear in the reports with
// their resident memory and heap 0; and a target's growth is measured as
// the system view measures every process's.
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {
long long proc_status_bytes(int pid, const std::string& field) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
    return -1;
}
}  // namespace

TEST_CASE("a -p target that has not allocated is listed, and its growth is measured", "[bpf][targets]") {
    RT_REQUIRE_ENV();
    Child prog, memtop;
    // rss_grow maps its memory itself: it makes no allocation to be seen by.
    const int pid = start_prog(prog, {prog_path("rss_grow_fp")});
    start_memtop(memtop, memtop_attach_args({pid}));
    wait_tracing({&prog, &memtop}, memtop, {pid});

    size_t seen = memtop.out_lines.size();
    auto first = next_report({&prog, &memtop}, memtop, seen);
    REQUIRE(first);
    INFO("first: " << first->dump());
    const json* e = entry(*first, pid);
    REQUIRE(e);
    CHECK((*e)["heap_bytes"] == 0);  // known, and none: its allocator is probed
    CHECK((*e)["allocs_total"] == 0);
    CHECK((*e)["rss_bytes"].get<long long>() > 0);

    // It grows by RSS_GROW_MB: the reports from here on sum to that growth
    // (within a MiB: the program's other memory may move a little).
    go({&prog, &memtop}, prog, "grown");
    const long long anon = proc_status_bytes(pid, "RssAnon");
    const long long grow = (long long)RSS_GROW_MB << 20;
    long long growth = 0;
    bool reached = false;
    std::string dump;
    for (int i = 0; i < 6 && !reached; i++) {
        auto r = next_report({&prog, &memtop}, memtop, seen);
        REQUIRE(r);
        const json* g = entry(*r, pid);
        REQUIRE(g);
        dump += g->dump() + "\n";
        growth += (*g)["growth_bytes"].get<long long>();
        reached = std::llabs((*g)["rss_anon_bytes"].get<long long>() - anon) <= 4096;
    }
    INFO("entries since grown:\n" << dump);
    REQUIRE(reached);
    CHECK(growth >= grow - (1 << 20));
    CHECK(growth <= grow + (1 << 20));

    end_prog({&prog, &memtop}, prog);
    Run r = stop_memtop({&prog, &memtop}, memtop, 0);
    CHECK(r.exit_code == 0);
}

TEST_CASE("memtop -- a command that never allocates lists it in the final report", "[bpf][targets]") {
    RT_REQUIRE_ENV();
    // no_malloc is static without a C library: -- CMD refuses it. no_alloc
    // is dynamic and allocates nothing (the guests' /bin/true is busybox,
    // static: not a program memtop can trace).
    if (!have_prog("no_alloc_fp")) return;
    Run r = run_memtop_cmd({prog_path("no_alloc_fp")});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    const auto& procs = (*r.final_report)["processes"];
    REQUIRE(procs.size() == 1);
    const json& p = procs[0];
    CHECK(p["comm"] == "no_alloc_fp");
    CHECK(p["exited"] == true);
    CHECK(p["heap_bytes"] == 0);
    CHECK(p["allocs_total"] == 0);
}
