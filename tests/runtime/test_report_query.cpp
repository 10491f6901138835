// memtop report FILE --at TIME / --peak [PID] on a recording of
// leak_steps (tests/progs/leak_steps.c): a steady heap, a checkpoint, then
// a leak at one site. --at the checkpoint shows the steady heap, --peak the
// leak's; a moment the recording does not hold is one line and status 2.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

#include <catch2/catch.hpp>

#include "harness.h"
#include "leak_steps.h"

using namespace rt;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/memtop-report-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// RFC 3339 with nanoseconds, as --at takes it.
std::string rfc3339_ns(std::chrono::system_clock::time_point t) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    std::time_t s = ns / 1000000000;
    std::tm tm;
    gmtime_r(&s, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(ns % 1000000000));
    return buf;
}

Run report(std::vector<std::string> args) {
    args.insert(args.begin(), {memtop_path(), "report"});
    return run_memtop(args);
}

// A recording of `leak_steps --wait` under `memtop -p`: step 1, a report
// showing it, the checkpoint, step 2 (the leak), a report showing it and
// one more (a flat end), then SIGINT.
struct TwoSteps {
    int pid = 0;
    std::chrono::system_clock::time_point checkpoint;
};

TwoSteps record_two_steps(const std::string& prog, const std::string& file) {
    TwoSteps out;
    Child p, memtop;
    out.pid = start_prog(p, {prog_path(prog), "--wait"});
    const int pid = out.pid;
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--record", file, "--record-interval", "0.05"});
    start_memtop(memtop, argv);
    wait_tracing({&p, &memtop}, memtop, {pid});
    go({&p, &memtop}, p);
    size_t seen = 0;
    REQUIRE(report_until({&p, &memtop}, memtop, seen,
                         [&](const json& r) { return proc_stats(r, pid).heap_bytes == LS_KEEP_BYTES; }));
    // Every report made before this moment shows step 1 only (step 2 has
    // not been asked for): the checkpoint.
    out.checkpoint = std::chrono::system_clock::now();
    tell({&p, &memtop}, p, "go", "leaked");
    REQUIRE(report_until({&p, &memtop}, memtop, seen, [&](const json& r) {
        return proc_stats(r, pid).heap_bytes == LS_KEEP_BYTES + LS_LEAK_BYTES;
    }));
    REQUIRE(next_report({&p, &memtop}, memtop, seen));
    Run live = stop_memtop({&p, &memtop}, memtop, SIGINT);
    INFO(live.diag);
    REQUIRE(live.exit_code == 0);
    CHECK(end_prog({&p}, p) == 0);
    return out;
}

}  // namespace

TEST_CASE("--at and --peak choose a recording's reports; a moment it does not hold is one line",
          "[bpf][record][moments]") {
    RT_REQUIRE_ENV();
    const std::string prog = "leak_steps_fp";
    if (!have_prog(prog)) return;
    TempDir dir;
    const std::string file = dir.path + "/run.gz";
    const TwoSteps run = record_two_steps(prog, file);
    const int pid = run.pid;
    const auto checkpoint = run.checkpoint;
    const std::string at = rfc3339_ns(checkpoint);
    INFO("checkpoint " << at);

    // --at the checkpoint: step 1's heap; --peak: the last report (the
    // heap only grew), and the moment chosen is said.
    Run at_run = report({file, "--at", at, "--json"});
    INFO(at_run.diag);
    REQUIRE(at_run.exit_code == 0);
    REQUIRE(at_run.out_lines.size() == 1);
    CHECK(proc_stats(json::parse(at_run.out_lines[0]), pid).heap_bytes == LS_KEEP_BYTES);
    REQUIRE(at_run.err_lines.size() == 1);
    CHECK(at_run.err_lines[0].find("memtop: --at ") == 0);
    CHECK(at_run.err_lines[0].find("showing report") != std::string::npos);

    Run peak = report({file, "--peak", std::to_string(pid), "--json"});
    INFO(peak.diag);
    REQUIRE(peak.exit_code == 0);
    REQUIRE(peak.out_lines.size() == 1);
    CHECK(proc_stats(json::parse(peak.out_lines[0]), pid).heap_bytes == LS_KEEP_BYTES + LS_LEAK_BYTES);
    REQUIRE(peak.err_lines.size() == 1);
    CHECK(peak.err_lines[0].find("the peak heap of pid " + std::to_string(pid)) != std::string::npos);

    // Bad input: one line, a non-zero exit.
    auto refused = [&](std::vector<std::string> args, const std::string& says) {
        Run r = report(args);
        INFO(r.diag);
        CHECK(r.exit_code == 2);
        CHECK(r.out_lines.empty());
        REQUIRE(r.err_lines.size() == 1);
        CHECK(r.err_lines[0].find(says) != std::string::npos);
    };
    refused({file, "--at", "86400"}, "--at 86400: after the end of " + file);
    refused({file, "--peak", "999999"}, "--peak 999999: " + file + " holds no heap of pid 999999");
    refused({file, "--at", "soon"}, "--at soon: not a time");
}
