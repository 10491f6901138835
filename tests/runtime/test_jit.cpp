// JIT frames: code in anonymous memory, which no ELF file describes, named
// from the process's perf map (/tmp/perf-PID.map), and the stack below it
// walked on by frame pointer through that code, then by unwind tables.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

// The JIT_SIZE stack of pid in a report: the stub named by the perf map at
// the exact offset of its call, its C caller and main below it, down to
// _start.
void check_jit_stack(const json& rep, int pid) {
    INFO(describe_stacks(rep, pid));
    const json* st = stack_with_bytes(rep, pid, JIT_SIZE);
    REQUIRE(st);
    INFO("chain: " << chain_of(*st));
    const json& f = (*st)["frames"];
    REQUIRE(f.size() >= 1);

    CHECK(f[0]["function"] == JIT_STUB_NAME);
    CHECK(f[0]["module"] == "[perf-" + std::to_string(pid) + ".map]");
    CHECK(f[0]["offset"] == JIT_STUB_RET_OFFSET);
    CHECK(f[0]["file"].is_null());
    if (!kernel_has_unwinder()) {
        // Frame pointers only (before 5.17): the -O2 caller keeps none, so
        // the walk ends in the stub's caller at best, and says so.
        CHECK((*st)["complete"] == false);
        return;
    }
    REQUIRE(f.size() >= 3);

    const int call_line = marker_line("jit_sites.c", "jit_call_site");
    const int main_line = marker_line("jit_sites.c", "main");
    REQUIRE(call_line > 0);
    REQUIRE(main_line > 0);
    CHECK(fn_is(f[1], "jit_call_site"));
    CHECK(basename_of(f[1].value("module", std::string())) == "jit_sites");
    CHECK(basename_of(f[1].value("file", std::string())) == "jit_sites.c");
    CHECK(f[1]["line"] == call_line);
    CHECK(fn_is(f[2], "main"));
    CHECK(f[2]["line"] == main_line);
    CHECK(fn_is(f.back(), "_start"));
    CHECK((*st)["complete"] == true);
    CHECK((*st)["allocs"] == 1);
}

}  // namespace

TEST_CASE("jit_sites under memtop -- CMD: a JIT stub named from its perf map, also after the map is removed",
          "[bpf][jit]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("jit_sites"));
    // memtop -- jit_sites --wait, with a pipe for stdin: CMD inherits it, so
    // the test drives the program through memtop (common.h protocol) and
    // reads a report while it runs. Hence the harness's steps rather than
    // run_memtop_cmd, which runs CMD straight to its end.
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), {"--", prog_path("jit_sites"), "--wait"});
    Child memtop;
    start_memtop(memtop, argv, true);
    // With --json, CMD's stdout is memtop's stderr.
    memtop.lines_on_stderr = true;
    const int pid = wait_ready({&memtop}, memtop);
    const std::string map_path = "/tmp/perf-" + std::to_string(pid) + ".map";
    REQUIRE(access(map_path.c_str(), F_OK) == 0);

    size_t from_err = 0, from = 0;
    go({&memtop}, memtop, "done", &from_err);

    // A report while the program runs (-d 1): the map is there to read.
    auto live = wait_line(
        {&memtop}, memtop, false,
        [&](const std::string& l) {
            if (!starts_with(l, "{")) return false;
            json j = json::parse(l, nullptr, false);
            return !j.is_discarded() && stack_with_bytes(j, pid, JIT_SIZE) != nullptr;
        },
        kTimeout, &from);
    REQUIRE(live);
    check_jit_stack(json::parse(*live), pid);

    // Now the program removes its map and exits; the final report is made
    // after that, from what memtop kept.
    memtop.close_stdin();
    Run r = stop_memtop({&memtop}, memtop, 0);
    CHECK(r.exit_code == 0);
    CHECK(access(map_path.c_str(), F_OK) != 0);
    REQUIRE(r.final_report);
    check_jit_stack(*r.final_report, pid);
}
