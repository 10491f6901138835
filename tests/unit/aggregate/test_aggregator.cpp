// Aggregation from hand-built kernel snapshots and /proc facts: no root, no
// BPF. Each rule a report depends on, with numbers that could come out wrong.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>

#include "aggregate/aggregator.h"

using namespace memtop;
using std::chrono::seconds;

namespace {

// Every other field at its default (a designated initializer would warn of
// each one it leaves out).
AggregateOptions options(bool system_view, size_t top = 10, std::optional<std::string> lines = std::nullopt) {
    AggregateOptions o;
    o.system_view = system_view;
    o.top = top;
    o.lines_file = std::move(lines);
    return o;
}

// /proc as the test says it is.
struct FakeFacts : ProcessFacts {
    std::map<uint32_t, RssStats> status;  // live processes and what /proc/PID/status says
    std::map<uint32_t, ProcessIdentity> ids;
    int identity_reads = 0, status_reads = 0;
    std::vector<uint32_t> live_pids() override {
        std::vector<uint32_t> out;
        for (const auto& [pid, r] : status) out.push_back(pid);
        return out;
    }
    std::optional<RssStats> resident(uint32_t pid) override {
        status_reads++;
        auto it = status.find(pid);
        if (it == status.end() || it->second.resident() == 0) return std::nullopt;  // gone, or a kernel thread
        return it->second;
    }
    ProcessIdentity identity(uint32_t pid) override {
        identity_reads++;
        return ids.count(pid) ? ids[pid] : ProcessIdentity{};
    }
    std::string comm(uint32_t pid) override { return "p" + std::to_string(pid); }
    std::optional<MemInfo> host_memory() override { return MemInfo{1000, 100, 400, 0, 0}; }
};

RssStats rss(int64_t anon, int64_t file = 0, int64_t peak = 0) {
    RssStats r;
    r.anon = anon;
    r.file = file;
    r.peak = peak ? peak : anon + file;
    return r;
}

ProcessStats heap_process(uint32_t pid, uint32_t epoch, int64_t heap) {
    ProcessStats p;
    p.pid = pid;
    p.epoch = epoch;
    p.comm = "traced";
    p.heap_bytes = heap;
    p.heap_peak_bytes = heap;
    return p;
}

const ProcessStats* find(const Report& r, uint32_t pid) {
    for (const auto& p : r.processes)
        if (p.pid == pid) return &p;
    return nullptr;
}

ReportMoment at(int s, bool final = false) {
    ReportMoment m;
    m.now = std::chrono::steady_clock::time_point{} + seconds(100 + s);
    m.final = final;
    return m;
}

}  // namespace

TEST_CASE("system view: growth since the previous report, its rate, and 'growing' after 3 in a row",
          "[aggregate][system]") {
    Aggregator agg(options(true));
    FakeFacts facts;
    facts.status[7] = rss(1000);
    KernelSnapshot k;
    k.rss[7] = rss(1000);

    Report r = agg.build(k, {}, facts, at(0));
    REQUIRE(find(r, 7));
    CHECK(find(r, 7)->growth_bytes == 0);  // first sight: no growth yet
    CHECK(find(r, 7)->comm == "p7");
    CHECK_FALSE(find(r, 7)->heap_traced);

    const int64_t sizes[] = {3000, 6000, 10000, 10000, 12000};
    const bool growing[] = {false, false, true, false, false};
    for (int i = 0; i < 5; i++) {
        k.rss[7] = rss(sizes[i]);
        r = agg.build(k, {}, facts, at(2 * (i + 1)));
        const ProcessStats* p = find(r, 7);
        REQUIRE(p);
        CHECK(p->growth_bytes == sizes[i] - (i ? sizes[i - 1] : 1000));
        CHECK(p->growth_rate == Approx(double(p->growth_bytes) / 2));  // two seconds between reports
        CHECK(p->growing == growing[i]);
    }
}

TEST_CASE("system view: /proc seeds a process the kernel has not seen, once; identity is read once",
          "[aggregate][system]") {
    Aggregator agg(options(true));
    FakeFacts facts;
    facts.status[5] = rss(4096, 8192);
    facts.status[6] = RssStats{};  // a kernel thread: nothing resident
    facts.ids[5] = {"/system.slice/x.service", std::string("abc"), 1};
    KernelSnapshot k;  // no rss_stat for either yet

    Report r = agg.build(k, {}, facts, at(0));
    REQUIRE(find(r, 5));
    CHECK(find(r, 5)->rss->resident() == 4096 + 8192);
    CHECK(find(r, 5)->rss->peak == 4096 + 8192);
    CHECK(find(r, 5)->container == "abc");
    CHECK(find(r, 5)->nspid == 1);
    CHECK_FALSE(find(r, 6));  // kernel threads are not listed

    // The kernel's counters take over once rss_stat fires; the seed's peak stays.
    k.rss[5] = rss(1000, 0, 2000);
    r = agg.build(k, {}, facts, at(1));
    CHECK(find(r, 5)->rss->resident() == 1000);
    CHECK(find(r, 5)->rss->peak == 4096 + 8192);
    CHECK(facts.identity_reads == 1);
}

TEST_CASE("system view: an ended process is listed once with its final numbers and the peak seen before",
          "[aggregate][system]") {
    Aggregator agg(options(true));
    FakeFacts facts;
    facts.status[9] = rss(50000);
    facts.ids[9] = {"/user.slice", std::nullopt, 9};
    KernelSnapshot k;
    k.rss[9] = rss(50000, 0, 90000);
    agg.build(k, {}, facts, at(0));

    // It exits; its exit event carries a smaller peak than reports saw.
    facts.status.erase(9);
    k.rss.erase(9);
    ProcessStats ended;
    ended.pid = 9;
    ended.comm = "gone";
    ended.rss = rss(0, 0, 60000);
    ended.mm_id = 77;
    Report r = agg.build(k, {ended}, facts, at(1));
    const ProcessStats* p = find(r, 9);
    REQUIRE(p);
    CHECK(p->exited);
    CHECK_FALSE(p->heap_traced);
    CHECK(p->rss->peak == 90000);
    CHECK(p->cgroup == "/user.slice");
    CHECK(p->mm_id == 77);

    r = agg.build(k, {}, facts, at(2));
    CHECK_FALSE(find(r, 9));  // once
}

TEST_CASE("targets: traced processes with resident memory; untraced exits are not the report's",
          "[aggregate][targets]") {
    Aggregator agg(options(false));
    FakeFacts facts;
    KernelSnapshot k;
    k.heap = {heap_process(10, 3, 4096)};
    k.rss[10] = rss(8192);
    k.rss[11] = rss(100);  // the kernel follows every process; 11 is not traced
    ProcessStats untraced;
    untraced.pid = 12;  // epoch 0
    ProcessStats traced_end = heap_process(13, 4, 100);
    traced_end.rss = rss(0, 0, 5000);
    Report r = agg.build(k, {untraced, traced_end}, facts, at(0));
    REQUIRE(r.processes.size() == 2);
    CHECK(find(r, 10)->rss->resident() == 8192);
    CHECK(find(r, 10)->heap_bytes == 4096);
    CHECK_FALSE(find(r, 11));
    CHECK_FALSE(find(r, 12));
    CHECK(find(r, 13)->exited);
    CHECK(find(r, 13)->rss->peak == 5000);
    CHECK(facts.status_reads == 0);  // no /proc walk with a target
}

TEST_CASE("targets: listed before their first allocation and at an exit without one, with their growth",
          "[aggregate][targets]") {
    Aggregator agg(options(false));
    FakeFacts facts;
    facts.status[20] = rss(1000);  // -p 20: no allocation yet, not in the kernel's heap records
    facts.status[21] = rss(500);   // not a target
    KernelSnapshot k;
    ReportMoment m = at(0);
    m.targets = {20, 22};
    Report r = agg.build(k, {}, facts, m);
    REQUIRE(r.processes.size() == 1);
    const ProcessStats* p = find(r, 20);
    REQUIRE(p);
    CHECK(p->heap_traced);
    CHECK(p->heap_bytes == 0);
    CHECK(p->comm == "p20");
    CHECK(p->rss->resident() == 1000);  // from /proc until the kernel's counters move
    CHECK(p->growth_bytes == 0);

    // Its counters move: growth from the previous report, as in the system view.
    k.rss[20] = rss(4000);
    m = at(2);
    m.targets = {20, 22};
    r = agg.build(k, {}, facts, m);
    p = find(r, 20);
    REQUIRE(p);
    CHECK(p->growth_bytes == 3000);
    CHECK(p->growth_rate == Approx(1500));

    // Target 22 ended without allocating (epoch 0): it is still the report's.
    ProcessStats ended;
    ended.pid = 22;
    ended.rss = rss(0, 0, 700);
    m = at(4, true);
    m.targets = {20, 22};
    r = agg.build(k, {ended}, facts, m);
    p = find(r, 22);
    REQUIRE(p);
    CHECK(p->exited);
    CHECK(p->heap_traced);
    CHECK(p->rss->peak == 700);
    CHECK_FALSE(find(r, 21));
}

TEST_CASE("mappings: per process when recorded, for traced processes only with a target", "[aggregate][mappings]") {
    Aggregator agg(options(false));
    FakeFacts facts;
    KernelSnapshot k;
    k.heap = {heap_process(10, 1, 0)};
    k.mapped[10] = {5, 1 << 20, 2 << 20, 3};
    Report r = agg.build(k, {}, facts, at(0));
    CHECK_FALSE(find(r, 10)->mapped_known);  // not recorded on this kernel

    k.mappings_recorded = true;
    r = agg.build(k, {}, facts, at(1));
    CHECK(find(r, 10)->mapped_known);
    CHECK(find(r, 10)->mapped_bytes == 1 << 20);
    CHECK(find(r, 10)->mapped_peak_bytes == 2 << 20);

    ProcessStats ended = heap_process(10, 1, 0);
    ended.mapped_bytes = 4096;
    ended.mapped_peak_bytes = 8192;
    k.heap.clear();
    r = agg.build(k, {ended}, facts, at(2));
    CHECK(find(r, 10)->mapped_known);
    CHECK(find(r, 10)->mapped_peak_bytes == 8192);
}

TEST_CASE("stacks: the top per list, only of the report's processes, with their raw addresses", "[aggregate][stacks]") {
    Aggregator agg(options(false, 2));
    FakeFacts facts;
    KernelSnapshot k;
    k.heap = {heap_process(10, 1, 600), heap_process(20, 1, 50)};
    k.heap_stacks = {{10, 1, 100, 500, 5, 500, 5},
                     {10, 1, 101, 100, 1, 100, 1},
                     {20, 1, 102, 50, 1, 50, 1},
                     {10, 9, 103, 999, 9, 999, 9}};  // an old instance of pid 10: not this report's
    k.growth_stacks = {{10, 0, 104, 4096, 1, 4096, 1}, {30, 0, 105, 9999, 1, 9999, 1}};  // 30 is not listed
    k.stacks[100] = {{0x10, 0x20, 0x30}, false, true};
    k.stacks[101] = {{0x11}, true, false};
    k.stacks[104] = {{0x40, 0x50}, false, true};
    Report r = agg.build(k, {}, facts, at(0));
    REQUIRE(r.stacks.size() == 2);
    CHECK(r.stacks[0].stats.stack_id == 100);
    CHECK(r.stacks[0].ips == std::vector<uint64_t>{0x10, 0x20, 0x30});
    CHECK(r.stacks[0].complete);
    CHECK(r.stacks[1].stats.stack_id == 101);
    CHECK(r.stacks[1].truncated);
    REQUIRE(r.growth_stacks.size() == 1);
    CHECK(r.growth_stacks[0].stats.pid == 10);
    CHECK(r.stacks[0].frames.empty());  // naming is symbolization's

    // The screen's detail view on pid 20 adds its own top stacks.
    ReportMoment m = at(1);
    m.focus = 20;
    r = agg.build(k, {}, facts, m);
    REQUIRE(r.stacks.size() == 3);
    CHECK(r.stacks[2].stats.stack_id == 102);
}

TEST_CASE("unwind summary: distinct stacks, the incomplete ones and where each stopped", "[aggregate][unwind]") {
    Aggregator agg(options(false));
    FakeFacts facts;
    KernelSnapshot k;
    k.unwind_tables = true;
    k.tables = {3, 1, 1000, 4096, 32768};
    k.heap = {heap_process(10, 1, 10)};
    k.heap_stacks = {{10, 1, 1, 1, 1, 1, 1}, {10, 1, 2, 1, 1, 1, 1}, {10, 1, 3, 1, 1, 1, 1}, {10, 1, 0, 7, 1, 7, 1}};
    k.stacks[1] = {{0x1, 0x2}, false, true};
    k.stacks[2] = {{0x1, 0x99}, false, false};
    k.stacks[3] = {{0x5, 0x77}, true, false};
    Report r = agg.build(k, {}, facts, at(0));
    CHECK(r.unwind.tables);
    CHECK(r.unwind.stacks == 3);  // stack 0 (not stored) is not a stack
    CHECK(r.unwind.incomplete == 2);
    CHECK(r.unwind.incomplete_ends == std::vector<std::pair<uint32_t, uint64_t>>{{10, 0x99}, {10, 0x77}});
    CHECK(r.unwind.table_files == 3);
    CHECK(r.unwind.table_bytes == 32768);
}

TEST_CASE("line listing (--lines): every heap stack of the report's processes goes to it, not only the top",
          "[aggregate][lines]") {
    Aggregator agg(options(false, 1, std::string("a.c")));
    FakeFacts facts;
    KernelSnapshot k;
    k.heap = {heap_process(10, 1, 10)};
    k.heap_stacks = {{10, 1, 1, 5, 1, 5, 1}, {10, 1, 2, 3, 1, 3, 1}, {10, 1, 0, 2, 1, 2, 1}};
    k.stacks[1] = {{0x1}, false, true};
    k.stacks[2] = {{0x2}, false, true};
    Report r = agg.build(k, {}, facts, at(0));
    REQUIRE(r.lines);
    CHECK(r.lines->file == "a.c");
    CHECK(r.line_stacks.size() == 2);  // stack 0 has no frames to list
    CHECK(r.stacks.size() == 1);
}

TEST_CASE("hidden processes keep their rows but lose their heap; the rest is as before", "[aggregate][hidden]") {
    Aggregator agg(options(false));
    FakeFacts facts;
    KernelSnapshot k;
    k.heap = {heap_process(10, 1, 500), heap_process(20, 1, 300)};
    k.heap_stacks = {{10, 1, 1, 500, 1, 500, 1}, {20, 1, 2, 300, 1, 300, 1}};
    ReportMoment m = at(0);
    m.hidden = {10};
    Report r = agg.build(k, {}, facts, m);
    REQUIRE(find(r, 10));
    CHECK_FALSE(find(r, 10)->heap_traced);
    CHECK(find(r, 10)->heap_bytes == 0);
    REQUIRE(r.stacks.size() == 1);
    CHECK(r.stacks[0].stats.pid == 20);
    CHECK(find(r, 20)->heap_bytes == 300);
}

TEST_CASE("a report carries what was lost, memtop's own cost and the host's memory", "[aggregate]") {
    Aggregator agg(options(false));
    FakeFacts facts;
    KernelSnapshot k;
    k.lost[Lost::stack_map_full] = 12;
    k.probes = 31;
    k.kernel_bytes = 1 << 20;
    ReportMoment m = at(0, true);
    m.self.cpu_percent = 1.5;
    Report r = agg.build(k, {}, facts, m);
    CHECK(r.final);
    CHECK(r.lost[Lost::stack_map_full] == 12);
    CHECK(r.self.probes == 31);
    CHECK(r.self.kernel_bytes == 1 << 20);
    CHECK(r.self.cpu_percent == 1.5);
    REQUIRE(r.host);
    CHECK(r.host->available == 400);
}

TEST_CASE("the final report's Python stacks: the top -T and one remainder per process that adds up to the domain",
          "[aggregate][python]") {
    Aggregator agg(options(false, 3));
    FakeFacts facts;
    KernelSnapshot k;
    ProcessStats py = heap_process(10, 1, 600);
    ProcessStats other = heap_process(20, 1, 50);
    // 8 stacks of pid 10 (3 with objects outstanding), 2 of pid 20 (1), and
    // one of a process not in the report.
    k.python_stacks = {{10, 1, 200, 3000, 30, 9000, 90}, {10, 1, 201, 0, 0, 50000, 500}, {10, 1, 202, 700, 7, 700, 7},
                       {10, 1, 203, 0, 0, 8000, 80},     {10, 1, 204, 64, 2, 6400, 200}, {10, 1, 205, 0, 0, 10, 1},
                       {10, 1, 206, 0, 0, 20, 2},        {10, 1, 0, 0, 0, 30, 3},        {20, 1, 300, 32, 1, 3200, 100},
                       {20, 1, 301, 0, 0, 900000, 9000}, {30, 1, 500, 5, 5, 5, 5}};
    py.py_bytes = 3000 + 700 + 64, py.py_allocs_total = 90 + 500 + 7 + 80 + 200 + 1 + 2 + 3;
    other.py_bytes = 32, other.py_allocs_total = 9100;
    k.heap = {py, other};
    ReportMoment m = at(0, true);
    m.all_stacks = true;
    Report r = agg.build(k, {}, facts, m);

    // By outstanding bytes (the report's order): 200, 202, 204; both
    // processes' stacks compete for the 3 places, as in the heap's -T.
    REQUIRE(r.all_python_stacks.size() == 3);
    CHECK(r.all_python_stacks[0].stats.stack_id == 200);
    CHECK(r.all_python_stacks[1].stats.stack_id == 202);
    CHECK(r.all_python_stacks[2].stats.stack_id == 204);
    REQUIRE(r.python_rest.size() == 2);
    const StackRemainder& rest10 = r.python_rest[0];
    CHECK(rest10.stats.pid == 10);
    CHECK(rest10.stats.epoch == 1);
    CHECK(rest10.stacks == 5);  // 201, 203, 205, 206 and the stack not stored
    CHECK(rest10.stats.stack_id == 0);
    CHECK(rest10.stats.bytes == 0);
    CHECK(rest10.stats.alloc_bytes_total == 50000 + 8000 + 10 + 20 + 30);
    CHECK(r.python_rest[1].stats.pid == 20);
    CHECK(r.python_rest[1].stacks == 2);
    CHECK(r.python_rest[1].stats.bytes == 32);

    // Listed and left out add up to each process's domain.
    for (const ProcessStats* p : {find(r, 10), find(r, 20)}) {
        REQUIRE(p);
        int64_t bytes = 0;
        uint64_t allocs_total = 0;
        for (const auto& s : r.all_python_stacks)
            if (s.stats.pid == p->pid) bytes += s.stats.bytes, allocs_total += s.stats.allocs_total;
        for (const auto& s : r.python_rest)
            if (s.stats.pid == p->pid) bytes += s.stats.bytes, allocs_total += s.stats.allocs_total;
        CHECK(bytes == p->py_bytes);
        CHECK(allocs_total == p->py_allocs_total);
    }

    // Nothing outstanding (a CPython that freed its objects as it exited):
    // the places go to the most allocated.
    for (auto& s : k.python_stacks) s.bytes = s.allocs = 0;
    r = agg.build(k, {}, facts, m);
    REQUIRE(r.all_python_stacks.size() == 3);
    CHECK(r.all_python_stacks[0].stats.stack_id == 301);
    CHECK(r.all_python_stacks[1].stats.stack_id == 201);
    CHECK(r.all_python_stacks[2].stats.stack_id == 200);
    REQUIRE(r.python_rest.size() == 2);
    CHECK(r.python_rest[0].stacks == 6);
    CHECK(r.python_rest[1].stacks == 1);

    // Not in an earlier report: its top python_stacks are the exports'.
    m.final = false;
    r = agg.build(k, {}, facts, m);
    CHECK(r.all_python_stacks.empty());
    CHECK(r.python_rest.empty());
}
