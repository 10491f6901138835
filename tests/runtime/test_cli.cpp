// Command-line behaviour: bad input, exit status passthrough.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

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

// Bad values fail before anything is loaded: one "memtop:" line naming the
// option as it is typed and what it takes, exit status 2.
TEST_CASE("memtop rejects bad option values with one line naming the option", "[cli]") {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"-d", "0"}, "memtop: -d: must be a positive number of seconds (got 0)"},
        {{"-d", "nan"}, "memtop: -d: must be a positive number of seconds (got nan)"},
        {{"-d", "1e-9"}, "memtop: -d: must be at least 0.1 seconds (got 1e-9)"},
        {{"-T", "0"}, "memtop: -T: must be a whole number from 1 on (got 0)"},
        {{"-n", "0"}, "memtop: -n: must be a whole number from 1 on (got 0)"},
        {{"--duration", "0"}, "memtop: --duration: must be a positive number of seconds (got 0)"},
        {{"--max-allocs", "0"}, "memtop: --max-allocs: must be a whole number from 1 on (got 0)"},
        {{"--max-stacks", "-3"}, "memtop: --max-stacks: must be a whole number from 1 on (got -3)"},
        {{"--max-allocs", "5000000000"},
         "memtop: --max-allocs: 5000000000 is out of range (memtop --help gives its type)"},
        {{"--fault-sample", "x"}, "memtop: --fault-sample: must be a whole number of bytes (got x)"},
        {{"-p", ""}, "memtop: -p: needs a process id (got '')"},
        {{"--lines", ""}, "memtop: --lines: needs a source file (got '')"},
        {{"--frobnicate"},
         "memtop: unknown option --frobnicate (memtop --help lists the options; -- CMD runs a command)"},
    };
    for (const auto& [args, expected] : cases) {
        std::vector<std::string> argv = {memtop_path()};
        argv.insert(argv.end(), args.begin(), args.end());
        Run r = run_memtop(argv);
        INFO(r.diag);
        REQUIRE_FALSE(r.timed_out);
        CHECK(r.exit_code == 2);
        auto lines = nonempty(r.err_lines);
        REQUIRE(lines.size() == 1);
        CHECK(lines[0] == expected);
        CHECK(nonempty(r.out_lines).empty());
    }
}

// Every option that takes a value shows its default in --help.
TEST_CASE("memtop --help shows every option's default", "[cli]") {
    Run r = run_memtop({memtop_path(), "--help"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    const std::vector<std::pair<std::string, std::string>> defaults = {
        {"--interval", "5"},
        {"--top", "10"},
        {"--iterations", "none: until stopped"},
        {"--duration", "none: until stopped"},
        {"--max-allocs", "2097152"},
        {"--max-stacks", "65536"},
        {"--max-aggs", "131072"},
        {"--max-procs", "16384"},
        {"--max-unwind-rows", "2097152"},
        {"--fault-sample", "524288"},
        {"--max-mappings", "131072"},
    };
    for (const auto& [option, value] : defaults) {
        INFO(option);
        bool found = false;
        for (const auto& l : r.out_lines)
            if (l.find(option) != std::string::npos) found = found || l.find("=" + value) != std::string::npos;
        CHECK(found);
    }
}

// A zombie has exited: its memory is gone, there is nothing to trace.
TEST_CASE("memtop -p of a process that has exited says so and exits 5", "[bpf][cli]") {
    RT_REQUIRE_ENV();
    Child parent;
    std::string error;
    // The short sleep ends after the shell became the long one, which
    // never reaps it: a zombie (a child that ends before the exec may be
    // reaped by the shell).
    REQUIRE(spawn(parent, {"sh", "-c", "sleep 0.2 & echo $!; exec sleep 30"}, false, &error));
    auto line = wait_line({&parent}, parent, false, [](const std::string& l) { return !l.empty(); });
    REQUIRE(line);
    const int zombie = std::stoi(*line);
    // Wait until it is a zombie (state Z in /proc/PID/stat).
    auto is_zombie = [&] {
        std::ifstream f("/proc/" + std::to_string(zombie) + "/stat");
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        auto p = text.rfind(") ");
        return p != std::string::npos && p + 2 < text.size() && text[p + 2] == 'Z';
    };
    REQUIRE(pump_until({&parent}, is_zombie));
    Run r = run_memtop(memtop_attach_args({zombie}));
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 5);
    auto lines = nonempty(r.err_lines);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "memtop: trace pid " + std::to_string(zombie) + ": it exited");
}

// A program that never calls malloc (Go's runtime maps its own heap): memtop
// says what it traces and where such a program's memory shows.
TEST_CASE("memtop -- a program without malloc says memtop traces the malloc family", "[bpf][cli]") {
    RT_REQUIRE_ENV();
    Run r = run_memtop_cmd({prog_path("no_malloc")});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 6);
    auto lines = nonempty(r.err_lines);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("memtop traces calls to malloc, free and operator new") != std::string::npos);
    CHECK(lines[0].find("memtop without a target shows its resident memory") != std::string::npos);
    CHECK(lines[0].find("stripped") == std::string::npos);
}

// A full map loses data from then on: said once, with the option that raises
// it, and counted in the reports.
TEST_CASE("memtop says once which full map lost data and which option raises it", "[bpf][cli]") {
    RT_REQUIRE_ENV();
    Run r = run_memtop_cmd({prog_path("c_sites_fp")}, {"--max-allocs", "4"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    uint64_t lost = 0;
    for (const auto& rep : r.reports()) lost = std::max(lost, rep["lost"].value("alloc_map_full", uint64_t(0)));
    CHECK(lost > 0);
    size_t said = 0;
    for (const auto& l : r.err_lines)
        if (l.find("--max-allocs raises its size (now 4)") != std::string::npos) said++;
    CHECK(said == 1);
}

// --json -- CMD: memtop's stdout is NDJSON only, every line a report that
// parses, while CMD prints (on memtop's stderr); -o FILE takes the reports
// instead and leaves CMD's stdout alone.
TEST_CASE("memtop --json -- CMD keeps CMD's output out of the NDJSON", "[bpf][cli]") {
    RT_REQUIRE_ENV();
    // Lines a JSON reader would choke on, before and after the program.
    const std::vector<std::string> cmd = {"sh", "-c",
                                          "echo '{not json'; echo plain; " + prog_path("c_sites_fp") + "; echo after"};
    Run r = run_memtop_cmd(cmd);
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    auto out = nonempty(r.out_lines);
    REQUIRE_FALSE(out.empty());
    for (const auto& l : out) {
        INFO(l);
        json j = json::parse(l, nullptr, false);
        CHECK((j.is_object() && j.value("type", "") == "report"));
    }
    CHECK(json::parse(out.back()).value("final", false));
    std::vector<std::string> printed;
    for (const auto& l : r.err_lines)
        if (l == "{not json" || l == "plain" || l == "after") printed.push_back(l);
    CHECK(printed == std::vector<std::string>{"{not json", "plain", "after"});

    // -o FILE: the reports there, CMD's lines on stdout as they were.
    // (A new name: memtop creates its output file, never opens one that is there.)
    char dir[] = "/tmp/memtop-output-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string path = std::string(dir) + "/out";
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), {"-o", path, "--"});
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    Run o = run_memtop(argv);
    std::ifstream f(path);
    std::vector<std::string> file_lines;
    for (std::string l; std::getline(f, l);)
        if (!l.empty()) file_lines.push_back(l);
    unlink(path.c_str());
    rmdir(dir);
    INFO(o.diag);
    CHECK(o.exit_code == 0);
    CHECK(nonempty(o.out_lines) == std::vector<std::string>{"{not json", "plain", "after"});
    REQUIRE_FALSE(file_lines.empty());
    for (const auto& l : file_lines) {
        INFO(l);
        json j = json::parse(l, nullptr, false);
        CHECK((j.is_object() && j.value("type", "") == "report"));
    }
    CHECK(json::parse(file_lines.back()).value("final", false));
}

// A process memtop may not read (pid 1 of another user namespace here, or
// any process without the privileges) is a permission failure, status 3.
TEST_CASE("memtop -p of a process whose memory map it may not read exits 3", "[bpf][cli]") {
    RT_REQUIRE_ENV();
    if (access("/proc/1/maps", R_OK) == 0) {
        // Readable as root: run memtop without privileges over it instead.
        Run r = run_memtop({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                            memtop_path(), "-p", "1"});
        INFO(r.diag);
        CHECK(r.exit_code == 3);
        REQUIRE(nonempty(r.err_lines).size() == 1);
        return;
    }
    Run r = run_memtop(memtop_attach_args({1}));
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 3);
    auto lines = nonempty(r.err_lines);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "memtop: trace pid 1: read /proc/1/maps: Permission denied");
}
