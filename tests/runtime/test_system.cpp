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

// pid's entries in the reports memtop prints from now on, in order, up to and
// including the first one for which done() holds (reached = true), or up to
// max_reports reports.
//
// The first report line read after an event the program announced is not a
// snapshot taken after it: memtop reads the kernel's numbers, then /proc for
// new processes, then prints, and under load the line arrives after the
// program's own. So the tests wait for the report that shows the state, and
// check growth as the sum over consecutive reports, which does not depend on
// which interval a change fell into.
struct Entries {
    bool reached = false;
    std::vector<json> list;
    json last_report;  // the whole report of list.back()
    long long growth() const {
        long long g = 0;
        for (const auto& e : list) g += e["growth_bytes"].get<long long>();
        return g;
    }
    std::string dump() const {
        std::string s;
        for (const auto& e : list) s += e.dump() + "\n";
        return s;
    }
};
Entries entries_until(const std::vector<Child*>& all, Child& memtop, size_t& seen, int pid,
                      const std::function<bool(const json&)>& done, int max_reports = 6) {
    Entries out;
    for (int i = 0; i < max_reports && !out.reached; i++) {
        auto r = next_report(all, memtop, seen);
        if (!r) break;
        if (const json* e = entry(*r, pid)) {
            out.list.push_back(*e);
            out.reached = done(*e);
            out.last_report = std::move(*r);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("system view: resident memory grows and shrinks with the program, the peak stays", "[bpf][system]") {
    RT_REQUIRE_ENV();
    // Within one page of /proc: on 6.2+ each CPU may hold a batch of pages
    // not yet folded into the counters the tracepoint reports, and memtop
    // sums those parts before each report, as /proc does (README, "Resident
    // memory"); before 6.2 the counters are exact atomics.
    const long long slack = 4096;
    // The kernel's own counts may trail the pages touched: before 6.2 each
    // thread caches up to 64 counter events (SPLIT_RSS_COUNTING), and /proc
    // trails by the same.
    const long long lag = 64 * 4096;

    Child memtop, prog;
    start_memtop(memtop, {memtop_path(), "--json", "-d", "1"});
    wait_memtop_ready({&memtop}, memtop, "memtop: watching");
    const int pid = start_prog(prog, {prog_path("rss_grow_fp")}, {&memtop});

    // A first sighting reports no growth: let memtop see the program before
    // it grows, so that the growth is measured from there.
    size_t seen = memtop.out_lines.size();
    auto before = entries_until({&memtop, &prog}, memtop, seen, pid, [](const json&) { return true; });
    INFO("before: " << before.dump());
    REQUIRE(before.reached);

    go({&memtop, &prog}, prog, "grown");
    const long long anon_proc = proc_status_kb(pid, "RssAnon") * 1024;
    const long long rss_proc = proc_status_kb(pid, "VmRSS") * 1024;
    // VmHWM is the larger of the current (summed) RSS and the kernel's own
    // high-water mark: right after growing, the current one.
    const long long hwm_proc = proc_status_kb(pid, "VmHWM") * 1024;
    // The program now waits, so /proc holds still: wait for memtop to agree.
    auto grown = entries_until({&memtop, &prog}, memtop, seen, pid, [&](const json& e) {
        return std::llabs(e["rss_anon_bytes"].get<long long>() - anon_proc) <= slack;
    });
    INFO("grown (/proc RssAnon " << anon_proc << ", VmRSS " << rss_proc << ", VmHWM " << hwm_proc << "):\n"
                                 << grown.dump());
    REQUIRE(grown.reached);
    check_report_shape(grown.last_report);
    const json& g = grown.list.back();
    const long long grow = (long long)RSS_GROW_MB << 20;
    CHECK(g["rss_anon_bytes"].get<long long>() >= grow - slack - lag);
    CHECK(std::llabs(g["rss_anon_bytes"].get<long long>() - anon_proc) <= slack);
    CHECK(std::llabs(g["rss_bytes"].get<long long>() - rss_proc) <= slack);
    CHECK(std::llabs(g["rss_peak_bytes"].get<long long>() - hwm_proc) <= slack);
    CHECK(g["rss_peak_bytes"].get<long long>() >= g["rss_bytes"].get<long long>());
    CHECK(grown.growth() >= grow - 2 * slack - (1 << 20));
    CHECK(g["heap_bytes"].is_null());  // not heap-traced: no uprobe anywhere
    CHECK(g["nspid"] == pid);
    CHECK(g["container"].is_null());
    CHECK(g["cgroup"].is_string());

    go({&memtop, &prog}, prog, "shrunk");
    auto shrunk = entries_until({&memtop, &prog}, memtop, seen, pid,
                                [&](const json& e) { return e["rss_anon_bytes"].get<long long>() < grow / 8; });
    INFO("shrunk:\n" << shrunk.dump());
    REQUIRE(shrunk.reached);
    const json& s = shrunk.list.back();
    CHECK(s["rss_peak_bytes"].get<long long>() >= grow - slack - lag);  // the peak is kept
    // The reports since the grown one gave it back (other memory of the
    // process may move a little meanwhile).
    CHECK(shrunk.growth() <= -(grow - 2 * slack - (1 << 20)));

    end_prog({&memtop, &prog}, prog);
    CHECK(stop_memtop({&memtop, &prog}, memtop, SIGINT).exit_code == 0);
}

TEST_CASE("memtop with no target shows every process, itself included", "[bpf][system][cli]") {
    RT_REQUIRE_ENV();
    Run r = run_memtop({memtop_path(), "--json", "--duration", "1"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json* self = entry(*r.final_report, r.pid);
    REQUIRE(self);
    CHECK((*self)["comm"] == "memtop");
    CHECK((*self)["rss_bytes"].get<long long>() > 0);
    // memtop's own cost: its maps are in the kernel, not in its RSS.
    const json& cost = r.final_report->at("self");
    CHECK(cost["rss_bytes"].get<long long>() > 0);
    CHECK(cost["kernel_bytes"].get<long long>() > (1LL << 20));
    CHECK(cost["cpu_seconds"].get<double>() > 0);
    CHECK(r.final_report->at("processes").size() > 3);
}

TEST_CASE("system view: growth stacks name the code that touched the pages (mmap, heap, stack), bytes within 10%",
          "[bpf][system][growth]") {
    RT_REQUIRE_ENV();
    // 4 KiB mean sampling interval: each page is sampled with p = 1 -
    // exp(-1) ~ 0.63, each sample weighted 4096/p. The smallest growth, the
    // 4 MiB stack (1024 pages, ~650 samples), has a relative standard
    // deviation of ~2.4%: 10% is over four of them.
    Child memtop, prog;
    // --max-stacks: this test is about naming and weighing one program's
    // growth; on a host busy with other work (compilers starting by the
    // hundred) their growth stacks fill the default (65,536) in seconds, and
    // the program's would be counted as lost instead of shown.
    start_memtop(
        memtop, {memtop_path(), "--json", "-d", "1", "-T", "1000", "--fault-sample", "4096", "--max-stacks", "131072"});
    wait_memtop_ready({&memtop}, memtop, "memtop: watching");
    if (!kernel_has_unwinder()) {
        // Growth stacks need the full BPF build and bpf_loop: memtop says so.
        REQUIRE(wait_line({&memtop}, memtop, true, [](const std::string& l) {
            return l.find("no growth stacks on this kernel") != std::string::npos;
        }));
        stop_memtop({&memtop}, memtop, SIGINT);
        return;
    }
    const int pid = start_prog(prog, {prog_path("rss_grow_nofp"), "--three-ways", "--warm-up"}, {&memtop});
    size_t seen = memtop.out_lines.size();
    // memtop builds a file's unwind table when the kernel first meets the
    // file in a stack: on a busy host that can come after the whole growth.
    // A warm-up touch first, and wait for a whole stack of it: then the
    // program's and libc's tables are in, whatever the host is doing.
    auto whole_warm_up = [&](const json& r) {
        for (const auto& st : r["growth_stacks"])
            if (st["pid"] == pid && st["complete"] == true && !st["frames"].empty() &&
                fn_is(st["frames"][0], "warm_up"))
                return true;
        return false;
    };
    bool warm = false;
    std::string last;
    // One deadline for all rounds: each round's wait is bounded alone, and
    // 20 of them once took 21 minutes on a loaded host.
    const auto warm_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(150);
    for (int round = 0; round < 20 && !warm && std::chrono::steady_clock::now() < warm_deadline; ++round) {
        tell({&memtop, &prog}, prog, "warm", "warmed");
        warm = report_until({&memtop, &prog}, memtop, seen, whole_warm_up, &last, 2).has_value();
    }
    INFO("last report before the growth: " << last);
    REQUIRE(warm);
    go({&memtop, &prog}, prog, "grown");
    // The first report read after "grown" may have been taken mid-growth
    // (see entries_until). Wait for the one whose resident memory agrees
    // with /proc, read after the growth; the report after it was taken
    // later still, so its samples are all in.
    const long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    const long long slack = ncpu * std::max(32L, 2 * ncpu) * 4096 + 4096;
    const long long anon_proc = proc_status_kb(pid, "RssAnon") * 1024;
    auto grown = entries_until({&memtop, &prog}, memtop, seen, pid, [&](const json& e) {
        return std::llabs(e["rss_anon_bytes"].get<long long>() - anon_proc) <= slack;
    });
    INFO("grown (/proc RssAnon " << anon_proc << "):\n" << grown.dump());
    REQUIRE(grown.reached);
    auto rep = next_report({&memtop, &prog}, memtop, seen);
    REQUIRE(rep);

    INFO("report: growth_stacks " << (*rep)["growth_stacks"].dump() << "\nlost " << (*rep)["lost"].dump());
    const int touch_line = marker_line("rss_grow.c", "touch_pages");
    REQUIRE(touch_line > 0);
    long long touched = 0, heap = 0, stack = 0;
    bool whole = false, whole_thread = false;
    for (const auto& st : (*rep)["growth_stacks"]) {
        if (st["pid"] != pid || st["frames"].empty()) continue;
        const json& f = st["frames"];
        if (fn_is(f[0], "touch_heap")) {
            heap += st["bytes"].get<long long>();
            continue;
        }
        if (fn_is(f[0], "touch_stack")) {
            // In the thread, walked to its start: stack_thread, start_thread,
            // clone3.
            stack += st["bytes"].get<long long>();
            if (st["complete"] == true && f.size() > 2 && fn_is(f[1], "stack_thread")) whole_thread = true;
            continue;
        }
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
    const long long heap_grow = (long long)RSS_GROW_HEAP_MB << 20, stack_grow = (long long)RSS_GROW_STACK_MB << 20;
    INFO("estimated: mmap " << touched << " of " << grow << ", heap " << heap << " of " << heap_grow << ", stack "
                            << stack << " of " << stack_grow);
    CHECK(std::llabs(touched - grow) <= grow / 10);
    CHECK(std::llabs(heap - heap_grow) <= heap_grow / 10);
    CHECK(std::llabs(stack - stack_grow) <= stack_grow / 10);
    CHECK(whole);
    CHECK(whole_thread);

    end_prog({&memtop, &prog}, prog);
    CHECK(stop_memtop({&memtop, &prog}, memtop, SIGINT).exit_code == 0);
}
