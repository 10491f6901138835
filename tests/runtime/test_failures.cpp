// Failures a user can cause, and what memtop leaves behind: one clear
// message, a documented exit status, nothing lost that was collected, and
// nothing attached once memtop is gone.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace rt;

namespace {

// IDs of loaded BPF programs with this name (bpftool, JSON output).
std::set<long> bpf_prog_ids(const std::string& name) {
    std::set<long> ids;
    FILE* f = popen("bpftool -j prog show 2>/dev/null", "r");
    if (!f) return ids;
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    pclose(f);
    auto j = json::parse(text, nullptr, false);
    if (!j.is_array()) return ids;
    for (const auto& p : j)
        if (p.value("name", "") == name) ids.insert(p.value("id", -1L));
    return ids;
}

}  // namespace

// The attach protocol up to "memtop: tracing", then memtop is killed, and
// the program goes on without it: run_attached's steps, not run_attached.
TEST_CASE("memtop killed by SIGKILL leaves no probe attached and the traced program intact", "[bpf][failure]") {
    RT_REQUIRE_ENV();
    Child prog, memtop;
    const int pid = start_prog(prog, {prog_path("c_sites_fp"), "--wait"});
    // Another memtop on the host (a developer's, another tree's tests) has
    // programs of that name too: ours are the ones loaded since.
    const auto others = bpf_prog_ids("free_entry");
    start_memtop(memtop, memtop_attach_args({pid}));
    wait_tracing({&prog, &memtop}, memtop, {pid});
    std::set<long> ours;
    for (long id : bpf_prog_ids("free_entry"))
        if (!others.count(id)) ours.insert(id);
    REQUIRE_FALSE(ours.empty());

    Run killed = stop_memtop({&prog, &memtop}, memtop, SIGKILL);
    CHECK(killed.exit_code == 128 + SIGKILL);

    // The kernel releases the programs with the last fd; give it a moment.
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        auto now = bpf_prog_ids("free_entry");
        gone = true;
        for (long id : ours) gone = gone && !now.count(id);
        if (!gone) usleep(100 * 1000);
    }
    CHECK(gone);

    // The program it was tracing goes on and finishes normally.
    go({&prog}, prog);
    CHECK(end_prog({&prog}, prog) == 0);
}

// At a normal exit memtop leaves the release of its syscall tracepoints to
// a child, memtop-detach (user/kernel/late_detach.h), so as not to wait for
// the kernel's grace periods itself. That child must not keep them: a
// program of memtop's still attached after it has gone would run on every
// mmap of the host, for ever if the child never ended.
TEST_CASE("memtop's normal exit leaves nothing attached: its syscall tracepoints are released after it",
          "[bpf][failure]") {
    RT_REQUIRE_ENV();
    Child prog, memtop;
    const int pid = start_prog(prog, {prog_path("c_sites_fp"), "--wait"});
    const auto others = bpf_prog_ids("mmap_exit");
    start_memtop(memtop, memtop_attach_args({pid}));
    wait_tracing({&prog, &memtop}, memtop, {pid});
    std::set<long> ours;
    for (long id : bpf_prog_ids("mmap_exit"))
        if (!others.count(id)) ours.insert(id);

    // The program ends; memtop ends with it, normally.
    go({&prog, &memtop}, prog);
    CHECK(end_prog({&prog, &memtop}, prog) == 0);
    Run r = stop_memtop({&prog, &memtop}, memtop, 0);
    INFO(r.diag);
    CHECK(r.exit_code == 0);
    CHECK(r.final_report);
    if (ours.empty()) {
        // No syscall tracepoint in this build or kernel (the compat build):
        // memtop said why, after its "tracing" line (read whole only now).
        bool said = false;
        for (const auto& l : memtop.err_lines) said = said || l.rfind("memtop: no mapping stacks", 0) == 0;
        CHECK(said);
    }

    bool gone = false;
    for (int i = 0; i < 300 && !gone; i++) {
        auto now = bpf_prog_ids("mmap_exit");
        gone = true;
        for (long id : ours) gone = gone && !now.count(id);
        if (!gone) usleep(100 * 1000);
    }
    CHECK(gone);
}

TEST_CASE("a traced process that exits ends memtop with its final numbers", "[bpf][failure][attach]") {
    RT_REQUIRE_ENV();
    AttachOptions opt;
    opt.until_programs_exit = true;  // the program exits; memtop must notice by itself
    Attached a = run_attached({{prog_path("c_sites_fp"), "--wait"}}, opt);
    const int pid = a.pids.at(0);
    const Run& r = a.run;
    INFO(r.diag);
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    auto p = proc_stats(*r.final_report, pid);
    REQUIRE(p.found);
    CHECK(p.heap_bytes > 0);  // what was outstanding at exit is still reported
    bool exited_flag = false;
    for (const auto& q : (*r.final_report)["processes"])
        if (q["pid"] == pid) exited_flag = q.value("exited", false);
    CHECK(exited_flag);
    bool said = false;
    for (const auto& l : r.err_lines) said = said || l == "memtop: pid " + std::to_string(pid) + " exited";
    CHECK(said);
}

TEST_CASE("a full allocation map is counted in every report, not silent", "[bpf][failure]") {
    RT_REQUIRE_ENV();
    // threads keeps 8 x 10 blocks outstanding; a map of 16 entries fills up.
    Run r = run_memtop_cmd({prog_path("threads_fp")}, {"--max-allocs", "16"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    const auto& lost = (*r.final_report)["lost"];
    CHECK(lost["alloc_map_full"].get<long long>() > 0);
    // What was tracked stays consistent: never more outstanding than fits.
    auto p = proc_by_comm(*r.final_report, "threads_fp");
    REQUIRE(p.found);
    CHECK(p.heap_bytes >= 0);
    CHECK(p.allocs_total - p.frees_total <= 16);
}

TEST_CASE("a stripped static command is refused with one line (status 6)", "[bpf][failure][host]") {
    RT_REQUIRE_ENV();
    if (!have_prog("c_sites_static")) return;
    char dir[] = "/tmp/memtop-rt-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string copy = std::string(dir) + "/stripped";
    std::string cmd = "cp " + prog_path("c_sites_static") + " " + copy + " && strip --strip-all " + copy;
    REQUIRE(system(cmd.c_str()) == 0);
    Run r = run_memtop_cmd({copy});
    unlink(copy.c_str());
    rmdir(dir);
    INFO(r.diag);
    CHECK(r.exit_code == 6);
    auto lines = nonempty(r.err_lines);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find(copy) != std::string::npos);
    CHECK(lines[0].find("statically linked") != std::string::npos);
}

TEST_CASE("without privileges memtop says what it needs (status 3)", "[bpf][failure]") {
    RT_REQUIRE_ENV();
    Run r = run_memtop({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", memtop_path(),
                        "--", "true"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 3);
    auto lines = nonempty(r.err_lines);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("load BPF programs") != std::string::npos);
    CHECK(lines[0].find("root") != std::string::npos);
}

TEST_CASE("bad pids and two targets are usage errors (status 2)", "[bpf][failure][cli]") {
    RT_REQUIRE_ENV();
    for (std::vector<std::string> args : {std::vector<std::string>{"-p", "12x"},
                                          {"-p", "1", "--heap-all"},
                                          {"--heap-all", "--exact", "--sample", "4096"}}) {
        std::vector<std::string> argv = {memtop_path()};
        argv.insert(argv.end(), args.begin(), args.end());
        Run r = run_memtop(argv);
        INFO(r.diag);
        REQUIRE_FALSE(r.timed_out);
        CHECK(r.exit_code == 2);
        CHECK_FALSE(nonempty(r.err_lines).empty());
    }
}
