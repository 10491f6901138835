// The final report of a run with targets lists the processes that ended
// before it (aggregate/ended_targets.h): hand-built reports, no root.
#include <catch2/catch.hpp>

#include "aggregate/ended_targets.h"

using namespace memtop;

namespace {

ProcessStats process(uint32_t pid, uint32_t epoch, int64_t heap, bool exited) {
    ProcessStats p;
    p.pid = pid;
    p.epoch = epoch;
    p.comm = "p" + std::to_string(pid);
    p.heap_bytes = heap;
    p.heap_peak_bytes = heap;
    p.exited = exited;
    return p;
}

ReportStack stack(uint32_t pid, uint32_t epoch, uint64_t id, int64_t bytes) {
    ReportStack s;
    s.stats.pid = pid;
    s.stats.epoch = epoch;
    s.stats.stack_id = id;
    s.stats.bytes = bytes;
    s.stats.allocs = 1;
    s.stats.alloc_bytes_total = static_cast<uint64_t>(bytes);
    s.stats.allocs_total = 1;
    s.frames.push_back(Frame{});
    s.frames.back().function = "site" + std::to_string(id);
    return s;
}

std::vector<uint64_t> stack_ids(const Report& r) {
    std::vector<uint64_t> ids;
    for (const auto& s : r.stacks) ids.push_back(s.stats.stack_id);
    return ids;
}

const ProcessStats* find(const Report& r, uint32_t pid) {
    for (const auto& p : r.processes)
        if (p.pid == pid) return &p;
    return nullptr;
}

}  // namespace

TEST_CASE("the final report lists the processes that ended before it, with their numbers and stacks") {
    EndedTargets kept(3);
    Report interval;
    interval.processes = {process(10, 1, 500, false), process(11, 2, 700, true)};
    interval.stacks = {stack(11, 2, 1, 400), stack(10, 1, 2, 300), stack(11, 2, 3, 300)};
    kept.keep(interval);
    CHECK(kept.size() == 1);

    Report final_report;
    final_report.final = true;
    final_report.processes = {process(10, 1, 600, true)};
    final_report.stacks = {stack(10, 1, 2, 350), stack(10, 1, 4, 250), stack(10, 1, 5, 50)};
    kept.add_to(final_report, std::nullopt);

    REQUIRE(final_report.processes.size() == 2);
    const ProcessStats* child = find(final_report, 11);
    REQUIRE(child);
    CHECK(child->exited);
    CHECK(child->reported_before);
    CHECK(child->heap_bytes == 700);
    CHECK_FALSE(find(final_report, 10)->reported_before);
    // Processes by heap, largest first; stacks: the top 3 of both, by bytes.
    CHECK(final_report.processes[0].pid == 11);
    CHECK(stack_ids(final_report) == std::vector<uint64_t>{1, 2, 3});
    CHECK(final_report.stacks[0].frames.at(0).function == "site1");
}

TEST_CASE("a process the final report lists itself is not added again") {
    EndedTargets kept(10);
    Report interval;
    interval.processes = {process(11, 2, 700, true)};
    interval.stacks = {stack(11, 2, 1, 400)};
    kept.keep(interval);
    Report final_report;
    final_report.processes = {process(11, 2, 700, true)};
    final_report.stacks = {stack(11, 2, 1, 400)};
    kept.add_to(final_report, std::nullopt);
    CHECK(final_report.processes.size() == 1);
    CHECK_FALSE(final_report.processes[0].reported_before);
    CHECK(final_report.stacks.size() == 1);
}

TEST_CASE("kept ended processes are bounded, and what was not kept is counted") {
    EndedTargets kept(2, 3);
    for (uint32_t pid = 1; pid <= 5; pid++) {
        Report r;
        r.processes = {process(pid, pid, 100 * pid, true)};
        r.stacks = {stack(pid, pid, pid, 100 * pid)};
        kept.keep(r);
    }
    CHECK(kept.size() == 3);
    CHECK(kept.not_kept() == 2);
    Report final_report;
    kept.add_to(final_report, std::nullopt);
    CHECK(final_report.processes.size() == 3);
    // Only the top -T of the kept stacks survive: the two largest of pids 1-3.
    CHECK(stack_ids(final_report) == std::vector<uint64_t>{3, 2});
}

TEST_CASE("the stacks of the focused process stay beside the top -T") {
    EndedTargets kept(1);
    Report interval;
    interval.processes = {process(11, 2, 900, true)};
    interval.stacks = {stack(11, 2, 1, 900)};
    kept.keep(interval);
    Report final_report;
    final_report.processes = {process(10, 1, 10, false)};
    final_report.stacks = {stack(10, 1, 7, 10)};
    kept.add_to(final_report, 10u);
    CHECK(stack_ids(final_report) == std::vector<uint64_t>{1, 7});
}

// A run writing --pprof, --folded or --html at its end: those files have
// every stack of the processes that ended before it, not only the top -T.
TEST_CASE("the files of a run's summary have every stack of the processes that ended before it, bounded") {
    EndedTargets kept(1, 4096, 3);
    Report interval;
    interval.processes = {process(10, 1, 500, false), process(11, 2, 900, true)};
    interval.stacks = {stack(11, 2, 1, 400)};  // the top -T
    interval.all_stacks = {stack(11, 2, 1, 400), stack(10, 1, 2, 300), stack(11, 2, 3, 300), stack(11, 2, 4, 200)};
    kept.keep(interval);
    Report later;
    later.processes = {process(10, 1, 500, false), process(12, 1, 50, true)};
    later.all_stacks = {stack(12, 1, 5, 30), stack(12, 1, 6, 20)};
    kept.keep(later);
    // Three kept (the bound), the two of the later report left out and counted.
    CHECK(kept.all_stacks_not_kept() == 2);

    Report final_report;
    final_report.final = true;
    final_report.processes = {process(10, 1, 600, true)};
    final_report.all_stacks = {stack(10, 1, 2, 300)};
    kept.add_to(final_report, std::nullopt);
    std::vector<uint64_t> ids;
    for (const auto& s : final_report.all_stacks) ids.push_back(s.stats.stack_id);
    // pid 10's own (still in the kernel), then 11's three, 12's none: the
    // bound was reached before them. The printed top -T keeps one stack.
    CHECK(ids == std::vector<uint64_t>{2, 1, 3, 4});
    CHECK(final_report.stacks.size() == 1);
    REQUIRE(find(final_report, 12) != nullptr);
}

// A CPython run by a shell under -f ends before the final report: its
// Python-domain stacks (the top -T, the export lists and their remainder)
// are in the run's summary and its files, as its heap stacks are.
TEST_CASE("the summary has the Python domain of the processes that ended before it") {
    EndedTargets kept(2);
    Report interval;
    interval.processes = {process(10, 1, 500, false), process(11, 2, 900, true)};
    interval.python_stacks = {stack(11, 2, 7, 3200), stack(10, 1, 8, 100), stack(11, 2, 9, 64)};
    interval.all_python_stacks = {stack(11, 2, 7, 3200), stack(11, 2, 9, 64)};  // ended processes' only
    StackRemainder rest;
    rest.stacks = 40;
    rest.stats.pid = 11, rest.stats.epoch = 2, rest.stats.bytes = 5000;
    interval.python_rest = {rest};
    kept.keep(interval);

    // Before the final report, a file of that report has the live process's
    // top stack beside the ended one's lists.
    std::vector<uint64_t> ids;
    for (const auto& s : python_profile_stacks(interval, [](const StackRemainder& r) {
             ReportStack s;
             s.stats = r.stats;
             return s;
         }))
        ids.push_back(s.stats.stack_id);
    CHECK(ids == std::vector<uint64_t>{7, 9, 0, 8});

    Report final_report;
    final_report.final = true;
    final_report.processes = {process(10, 1, 600, true)};
    final_report.python_stacks = {stack(10, 1, 8, 100)};
    final_report.all_python_stacks = {stack(10, 1, 8, 100)};
    kept.add_to(final_report, std::nullopt);
    ids.clear();
    for (const auto& s : final_report.all_python_stacks) ids.push_back(s.stats.stack_id);
    CHECK(ids == std::vector<uint64_t>{8, 7, 9});
    REQUIRE(final_report.python_rest.size() == 1);
    CHECK(final_report.python_rest[0].stats.pid == 11);
    CHECK(final_report.python_rest[0].stacks == 40);
    // The printed top -T (2) of both processes, by outstanding bytes.
    ids.clear();
    for (const auto& s : final_report.python_stacks) ids.push_back(s.stats.stack_id);
    CHECK(ids == std::vector<uint64_t>{7, 8});
}
