// --record FILE and `memtop report FILE`: the recording shows exactly what
// the live run showed, even when memtop was killed or the file was cut.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

std::string temp_file(const char* name) {
    return "/tmp/memtop-record-" + std::to_string(getpid()) + "-" + name;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Run report_of(const std::string& file) {
    return run_memtop({memtop_path(), "report", file, "--json"});
}

}  // namespace

TEST_CASE("memtop report FILE prints exactly the live run's final JSON; a cut file says so in one line",
          "[bpf][record]") {
    RT_REQUIRE_ENV();
    const std::string file = temp_file("cmd.gz"), cut = temp_file("cut.gz");
    Run live = run_memtop_cmd({prog_path("c_sites_fp")}, {"--record", file});
    INFO(live.diag);
    REQUIRE(live.exit_code == 0);
    REQUIRE_FALSE(live.out_lines.empty());
    const std::string final_line = live.out_lines.back();
    REQUIRE(json::parse(final_line).value("final", false));

    Run rep = report_of(file);
    INFO(rep.diag);
    CHECK(rep.exit_code == 0);
    CHECK(rep.err_lines.empty());
    REQUIRE(rep.out_lines.size() == 1);
    CHECK(rep.out_lines[0] == final_line);

    // Without the stream's end (its last bytes): every record still reads.
    std::string data = slurp(file);
    REQUIRE(data.size() > 16);
    std::ofstream(cut, std::ios::binary) << data.substr(0, data.size() - 6);
    Run part = report_of(cut);
    INFO(part.diag);
    CHECK(part.exit_code == 1);
    REQUIRE(part.err_lines.size() == 1);
    CHECK(part.err_lines[0].find("truncated") != std::string::npos);
    REQUIRE(part.out_lines.size() == 1);
    CHECK(part.out_lines[0] == final_line);
    unlink(file.c_str());
    unlink(cut.c_str());
}

TEST_CASE("a recording of a memtop killed by SIGKILL reads up to its last report", "[bpf][record][failure]") {
    RT_REQUIRE_ENV();
    const std::string file = temp_file("killed.gz");
    Child prog, memtop;
    const int pid = start_prog(prog, {prog_path("c_sites_fp"), "--wait"});
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--record", file, "--record-interval", "0.05"});
    start_memtop(memtop, argv);
    wait_tracing({&prog, &memtop}, memtop, {pid});
    go({&prog, &memtop}, prog);
    size_t seen = 0;
    auto done = report_until({&prog, &memtop}, memtop, seen,
                             [&](const json& r) { return proc_stats(r, pid).heap_bytes == C_TOTAL_BYTES; });
    REQUIRE(done);
    // One more report: the one that showed it is on disk by then.
    REQUIRE(next_report({&prog, &memtop}, memtop, seen));
    Run killed = stop_memtop({&prog, &memtop}, memtop, SIGKILL);
    CHECK(killed.exit_code == 128 + SIGKILL);

    Run rep = report_of(file);
    INFO(rep.diag);
    CHECK(rep.exit_code == 1);
    REQUIRE(rep.err_lines.size() == 1);
    CHECK(rep.err_lines[0].find("truncated") != std::string::npos);
    REQUIRE(rep.out_lines.size() == 1);
    // The kill may come between a report's printing and its recording:
    // the file's last report is one of the last two printed.
    const auto& printed = killed.out_lines;
    REQUIRE_FALSE(printed.empty());
    bool same =
        rep.out_lines[0] == printed.back() || (printed.size() > 1 && rep.out_lines[0] == printed[printed.size() - 2]);
    CHECK(same);
    CHECK(proc_stats(json::parse(rep.out_lines[0]), pid).heap_bytes == C_TOTAL_BYTES);
    CHECK(end_prog({&prog}, prog) == 0);
    unlink(file.c_str());
}
