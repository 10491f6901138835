// Command-line behaviour: bad input, exit status passthrough.
#include <signal.h>

#include <cerrno>
#include <fstream>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace rt;

namespace {
int unused_pid() {
    long pid_max = 4194304;
    std::ifstream("/proc/sys/kernel/pid_max") >> pid_max;
    for (long pid = 999999; pid > 1; pid--)
        if (pid <= pid_max && kill(pid_t(pid), 0) != 0 && errno == ESRCH) return int(pid);
    return 999999;
}
}  // namespace

TEST_CASE("memtop -p with a nonexistent pid fails with one line naming it", "[bpf][cli]") {
    RT_REQUIRE_ENV();
    const int pid = unused_pid();
    // memtop fails before it traces anything: no attach protocol.
    Run r = run_memtop(memtop_attach_args({pid}));
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code != 0);
    auto lines = nonempty(r.err_lines);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find(std::to_string(pid)) != std::string::npos);
}

TEST_CASE("memtop -- /nonexistent/cmd exits 127 naming the command", "[bpf][cli]") {
    RT_REQUIRE_ENV();
    Run r = run_memtop_cmd({"/nonexistent/cmd"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 127);
    bool named = false;
    for (const auto& l : r.err_lines) named = named || l.find("/nonexistent/cmd") != std::string::npos;
    CHECK(named);
}

TEST_CASE("memtop -- CMD passes the exit status through", "[bpf][cli]") {
    RT_REQUIRE_ENV();
    Run r = run_memtop_cmd({"sh", "-c", "exit 7"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 7);
    CHECK(r.final_report);  // the final report is printed after CMD exits
}
