// --heap-all and a container's own libc: a process in its own mount
// namespace whose libc is a different file (another inode) than the host's.
// memtop must find that file through /proc/PID/maps and /proc/PID/root,
// attach to it, and count exactly.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

TEST_CASE("--heap-all traces a process whose libc is its own file", "[bpf][heap-all][container][host]") {
    RT_REQUIRE_ENV();
    const std::string host_libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    char dir[] = "/tmp/memtop-ct-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string copy = std::string(dir) + "/libc.so.6";
    REQUIRE(system(("cp " + host_libc + " " + copy).c_str()) == 0);
    struct stat st;
    REQUIRE(stat(copy.c_str(), &st) == 0);

    // memtop first, the program then (memtop must find its libc as it
    // appears): the steps of the attach protocol in that order.
    Child memtop, prog;
    // --max-stacks 8192: the final report names every stored stack of every
    // process (-T 1000000); beside a CI build (compilers traced exactly
    // with the rest of the host) the default 65,536 took it past 120 s.
    // Bytes beyond the table are kept frameless and counted (below).
    start_memtop(memtop, {memtop_path(), "--heap-all", "--exact", "--json", "-d", "60", "-T", "1000000", "--max-stacks",
                          "8192", "-v"});
    wait_memtop_ready({&memtop}, memtop, "memtop: tracing all processes");

    // The "container": a private mount namespace where the copy is its libc.
    std::string inner = "mount --bind " + copy + " " + host_libc + " && exec " + prog_path("c_sites_fp") + " --wait";
    const int pid = start_prog(prog, {"unshare", "-m", "--propagation", "private", "sh", "-c", inner}, {&memtop});

    // It really maps the copy (another inode than the host's libc).
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    bool maps_copy = false;
    for (std::string line; std::getline(maps, line);)
        maps_copy = maps_copy || (line.find("libc.so.6") != std::string::npos &&
                                  line.find(" " + std::to_string(st.st_ino) + " ") != std::string::npos);
    REQUIRE(maps_copy);

    // memtop's rescan attaches to the new file, named as the process maps it.
    const std::string attached = "memtop: attached to " + host_libc + " (via pid " + std::to_string(pid) + ")";
    auto seen = wait_line({&memtop, &prog}, memtop, true, [&](const std::string& l) { return l == attached; });
    INFO(memtop.describe(0));
    REQUIRE(seen);

    go({&memtop, &prog}, prog);
    // The final report symbolizes every stack of every process (-T
    // 1000000): in a TCG guest that took over 30 s on 7.3.
    Run r = stop_memtop({&memtop, &prog}, memtop, SIGINT, std::chrono::seconds(300));
    end_prog({&prog}, prog);
    unlink(copy.c_str());
    rmdir(dir);

    REQUIRE(r.final_report);
    ProcStats p = proc_stats(*r.final_report, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(*r.final_report, pid));
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == C_PEAK_BYTES);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
    CHECK(p.frees_total == C_FREES_TOTAL);
    // Which stack: under --heap-all every process on the host stores its
    // stacks in the same table, and on a busy host (a CI build beside this
    // test) it fills; memtop then keeps the bytes without frames (stack id
    // 0, shown with no frames) and counts each in lost.stack_map_full. So
    // the program's bytes are all there, named or frameless, and frameless
    // ones only ever with that loss reported.
    long long frameless = 0;
    for (const json* st : stacks_of(*r.final_report, pid))
        if (st->value("frames", json::array()).empty()) frameless += (*st)["bytes"].get<long long>();
    const long long stack_map_full = (*r.final_report)["lost"]["stack_map_full"].get<long long>();
    INFO("frameless bytes " << frameless << ", lost.stack_map_full " << stack_map_full);
    CHECK(sum_all(*r.final_report, pid).bytes == C_TOTAL_BYTES);
    if (frameless > 0) CHECK(stack_map_full > 0);
    if (stack_map_full == 0)
        CHECK(sum_frame0(*r.final_report, pid, "leak_malloc").bytes == C_LEAK_MALLOC_N * C_LEAK_MALLOC_SIZE);
    else
        CHECK(sum_frame0(*r.final_report, pid, "leak_malloc").bytes + frameless >=
              C_LEAK_MALLOC_N * C_LEAK_MALLOC_SIZE);
}

// A container built with chroot: a directory with its own copies of the
// program, its libc and loader. The process's maps show host paths (the
// kernel names files from the reader's root), which its root does not hold.
TEST_CASE("-p traces a chrooted process through its own libc", "[bpf][attach][container][host]") {
    RT_REQUIRE_ENV();
    char dir[] = "/tmp/memtop-chroot-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string root = dir;
    const std::string libdir = root + "/lib/x86_64-linux-gnu";
    REQUIRE(system(("mkdir -p " + libdir + " " + root + "/lib64 && cp /lib/x86_64-linux-gnu/libc.so.6 " + libdir +
                    "/ && cp /lib64/ld-linux-x86-64.so.2 " + root + "/lib64/ && cp " + prog_path("c_sites_fp") + " " +
                    root + "/c_sites_fp")
                       .c_str()) == 0);

    Attached a = run_attached({{"chroot", root, "/c_sites_fp", "--wait"}});
    system(("rm -rf " + root).c_str());
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    const int pid = a.pids.at(0);
    ProcStats p = proc_stats(rep, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, pid));
    // Attached before the program's allocations: exact.
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == C_PEAK_BYTES);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
    CHECK(p.frees_total == C_FREES_TOTAL);
    CHECK(sum_frame0(rep, pid, "leak_malloc").bytes == C_LEAK_MALLOC_N * C_LEAK_MALLOC_SIZE);
}
