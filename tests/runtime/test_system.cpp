// The system view (`memtop` with no target): every process's resident
// memory from kmem:rss_stat, with its peak, growth and identity.
#include <unistd.h>

#include <fstream>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

long long proc_status_kb(int pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (starts_with(line, field + ":")) return std::stoll(line.substr(field.size() + 1));
    return -1;
}

// The first report that memtop prints after `after` reports, parsed.
std::optional<json> next_report(const std::vector<Child*>& all, Child& memtop, size_t& seen) {
    size_t from = seen;
    auto line = wait_line(all, memtop, false, [](const std::string& l) { return starts_with(l, "{"); }, kTimeout,
                          &from);
    if (!line) return std::nullopt;
    seen = from;
    return json::parse(*line);
}

const json* entry(const json& report, int pid) {
    for (const auto& p : report["processes"])
        if (p["pid"] == pid) return &p;
    return nullptr;
}

}  // namespace

TEST_CASE("system view: resident memory grows and shrinks with the program, the peak stays", "[bpf][system]") {
    RT_REQUIRE_ENV();
    // On 6.2+ each CPU may hold a batch of pages not yet folded into the
    // counters the tracepoint reports (README, "System view").
    const long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    const long long slack = ncpu * std::max(32L, 2 * ncpu) * 4096 + 4096;

    Child memtop, prog;
    std::string err;
    REQUIRE(spawn(memtop, {memtop_path(), "--json", "-d", "1"}, false, &err));
    REQUIRE(wait_line({&memtop}, memtop, true,
                      [](const std::string& l) { return starts_with(l, "memtop: watching"); }));
    REQUIRE(spawn(prog, {prog_path("rss_grow_fp")}, true, &err));
    auto ready = wait_line({&memtop, &prog}, prog, false, [](const std::string& l) { return starts_with(l, "ready "); });
    REQUIRE(ready);
    const int pid = std::stoi(ready->substr(6));

    size_t seen = memtop.out_lines.size();
    prog.write_stdin("go\n");
    REQUIRE(wait_line({&memtop, &prog}, prog, false, [](const std::string& l) { return l == "grown"; }));
    const long long anon_proc = proc_status_kb(pid, "RssAnon") * 1024;
    const long long rss_proc = proc_status_kb(pid, "VmRSS") * 1024;
    seen = memtop.out_lines.size();
    auto grown = next_report({&memtop, &prog}, memtop, seen);
    REQUIRE(grown);
    check_report_shape(*grown);
    const json* g = entry(*grown, pid);
    INFO("report entry: " << (g ? g->dump() : "none"));
    REQUIRE(g);
    const long long grow = (long long)RSS_GROW_MB << 20;
    CHECK((*g)["rss_anon_bytes"].get<long long>() >= grow - slack);
    CHECK(std::llabs((*g)["rss_anon_bytes"].get<long long>() - anon_proc) <= slack);
    // rss_bytes adds three counters (file, anon, shmem), each with its own
    // unfolded per-CPU batches.
    CHECK(std::llabs((*g)["rss_bytes"].get<long long>() - rss_proc) <= 3 * slack);
    CHECK((*g)["rss_peak_bytes"].get<long long>() >= (*g)["rss_bytes"].get<long long>());
    CHECK((*g)["heap_bytes"].is_null());  // not heap-traced: no uprobe anywhere
    CHECK((*g)["nspid"] == pid);
    CHECK((*g)["container"].is_null());
    CHECK((*g)["cgroup"].is_string());

    prog.write_stdin("go\n");
    REQUIRE(wait_line({&memtop, &prog}, prog, false, [](const std::string& l) { return l == "shrunk"; }));
    seen = memtop.out_lines.size();
    auto shrunk = next_report({&memtop, &prog}, memtop, seen);
    REQUIRE(shrunk);
    const json* s = entry(*shrunk, pid);
    REQUIRE(s);
    INFO("after: " << s->dump());
    CHECK((*s)["rss_anon_bytes"].get<long long>() < grow / 8);
    CHECK((*s)["rss_peak_bytes"].get<long long>() >= grow - slack);  // the peak is kept
    // This interval gave it back (other memory of the process may move a
    // little in the same interval).
    CHECK((*s)["growth_bytes"].get<long long>() <= -(grow - 2 * slack - (1 << 20)));

    prog.close_stdin();
    REQUIRE(wait_exit({&memtop, &prog}, prog));
    memtop.signal(SIGINT);
    REQUIRE(wait_exit({&memtop, &prog}, memtop));
    CHECK(memtop.exit_code() == 0);
}

TEST_CASE("memtop with no target shows every process, itself included", "[bpf][system][cli]") {
    RT_REQUIRE_ENV();
    Child m;
    std::string err;
    REQUIRE(spawn(m, {memtop_path(), "--json", "--duration", "1"}, false, &err));
    REQUIRE(wait_exit({&m}, m));
    INFO(m.describe());
    CHECK(m.exit_code() == 0);
    Run r;
    collect_reports(m, r);
    REQUIRE(r.final_report);
    const json* self = entry(*r.final_report, m.pid);
    REQUIRE(self);
    CHECK((*self)["comm"] == "memtop");
    CHECK((*self)["rss_bytes"].get<long long>() > 0);
    CHECK(r.final_report->at("processes").size() > 3);
}

TEST_CASE("system view: growth stacks name the code that touched the pages, bytes estimated within 10%",
          "[bpf][system][growth]") {
    RT_REQUIRE_ENV();
    // 16 KiB mean sampling interval: each page is sampled with p = 1 -
    // exp(-1/4) ~ 0.22, so 64 MiB gets ~3600 samples, a relative standard
    // deviation of ~1.5%. 10% is over six of them.
    Child memtop, prog;
    std::string err;
    REQUIRE(spawn(memtop, {memtop_path(), "--json", "-d", "1", "-T", "50", "--fault-sample", "16384"}, false, &err));
    REQUIRE(wait_line({&memtop}, memtop, true,
                      [](const std::string& l) { return starts_with(l, "memtop: watching"); }));
    if (!kernel_has_unwinder()) {
        // Growth stacks need the full BPF build and bpf_loop: memtop says so.
        REQUIRE(wait_line({&memtop}, memtop, true, [](const std::string& l) {
            return l.find("no growth stacks on this kernel") != std::string::npos;
        }));
        memtop.signal(SIGINT);
        REQUIRE(wait_exit({&memtop}, memtop));
        return;
    }
    REQUIRE(spawn(prog, {prog_path("rss_grow_nofp")}, true, &err));
    auto ready = wait_line({&memtop, &prog}, prog, false, [](const std::string& l) { return starts_with(l, "ready "); });
    REQUIRE(ready);
    const int pid = std::stoi(ready->substr(6));
    prog.write_stdin("go\n");
    REQUIRE(wait_line({&memtop, &prog}, prog, false, [](const std::string& l) { return l == "grown"; }));
    size_t seen = memtop.out_lines.size();
    auto rep = next_report({&memtop, &prog}, memtop, seen);
    REQUIRE(rep);

    const int touch_line = marker_line("rss_grow.c", "touch_pages");
    REQUIRE(touch_line > 0);
    long long touched = 0;
    bool whole = false;
    for (const auto& st : (*rep)["growth_stacks"]) {
        if (st["pid"] != pid || st["frames"].empty()) continue;
        const json& f = st["frames"];
        if (!fn_is(f[0], "touch_pages")) continue;
        INFO("stack: " << st.dump());
        // frames[0] is the touching instruction itself, at its line.
        CHECK(f[0]["line"] == touch_line);
        touched += st["bytes"].get<long long>();
        CHECK(st["samples"].get<long long>() > 0);
        if (st["complete"] == true) {
            whole = true;
            CHECK(fn_is(f[1], "main"));
            CHECK(fn_is(f.back(), "_start"));
        }
    }
    const long long grow = (long long)RSS_GROW_MB << 20;
    INFO("estimated " << touched << " of " << grow);
    CHECK(std::llabs(touched - grow) <= grow / 10);
    CHECK(whole);

    prog.close_stdin();
    REQUIRE(wait_exit({&memtop, &prog}, prog));
    memtop.signal(SIGINT);
    REQUIRE(wait_exit({&memtop, &prog}, memtop));
    CHECK(memtop.exit_code() == 0);
}
