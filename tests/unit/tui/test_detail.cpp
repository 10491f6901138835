#include <catch2/catch.hpp>

#include "views/tui/detail.h"

using namespace memtop;
using namespace memtop::tui;

namespace {

ReportStack stack(uint32_t pid, uint64_t id, int64_t bytes, std::vector<std::string> fns) {
    ReportStack s;
    s.stats.pid = pid;
    s.stats.epoch = 1;
    s.stats.stack_id = id;
    s.stats.bytes = bytes;
    s.stats.allocs = 1;
    for (auto& fn : fns) {
        Frame f;
        f.address = 0x1000 + id;
        f.function = fn;
        f.module = "/bin/prog";
        s.frames.push_back(f);
    }
    return s;
}

std::vector<std::string> texts(const std::vector<DetailLine>& lines) {
    std::vector<std::string> out;
    for (const auto& l : lines) out.push_back(l.text);
    return out;
}

bool has(const std::vector<DetailLine>& lines, const std::string& needle) {
    for (const auto& l : lines)
        if (l.text.find(needle) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("history: one sample per report, the newest kept", "[tui][detail]") {
    History h(3);
    Row a;
    a.pid = 1;
    a.rss = 10;
    Row b;
    b.pid = 2;
    b.rss = 5;
    b.heap = 7;
    for (int i = 0; i < 4; i++) {
        a.rss = 10 + i;
        h.record({a, b});
    }
    CHECK(h.rss(1) == std::vector<std::optional<int64_t>>{11, 12, 13});
    CHECK(h.heap(1) == std::vector<std::optional<int64_t>>{std::nullopt, std::nullopt, std::nullopt});
    CHECK(h.heap(2).back() == 7);
    // Gone from the report: forgotten, unless a detail view keeps it.
    h.record({a}, 2u);
    CHECK(h.rss(2).size() == 3);
    h.record({a});
    CHECK(h.rss(2).empty());
}

TEST_CASE("stack list: one process's stacks, folded, expanded frame by frame", "[tui][detail]") {
    Report r;
    r.stacks = {stack(7, 1, 100, {"small_site", "main"}), stack(7, 2, 5000, {"big_site", "run", "main"}),
                stack(8, 3, 9999, {"other_process"})};
    StackList s;
    s.update(r, 7);
    REQUIRE(s.size() == 2);
    auto lines = s.lines(true);
    CHECK_FALSE(has(lines, "other_process"));
    CHECK(has(lines, "no growth stacks yet"));
    // Largest first, folded to the first frame.
    CHECK(texts(lines)[1].find("[+] 4.9 KiB in 1 allocation   big_site") == 0);
    CHECK(texts(lines)[2].find("[+] 100 B in 1 allocation   small_site") == 0);
    CHECK_FALSE(has(lines, "run  (prog)"));
    REQUIRE(s.cursor() == 0);
    s.toggle();
    lines = s.lines(true);
    CHECK(texts(lines)[1].find("[-] ") == 0);
    CHECK(texts(lines)[2] == "    #0   big_site  (prog)");
    CHECK(texts(lines)[3] == "    #1   run  (prog)");
    CHECK(texts(lines)[4] == "    #2   main  (prog)");
    CHECK(lines[3].item == 0);
    // Expanded and the cursor stay with their stacks when the order changes.
    s.move(1);
    r.stacks[0].stats.bytes = 90000;
    s.update(r, 7);
    CHECK(s.cursor() == 0);  // small_site, now first
    lines = s.lines(true);
    CHECK(texts(lines)[1].find("[+] 87.9 KiB in 1 allocation   small_site") == 0);
    CHECK(texts(lines)[2].find("[-] 4.9 KiB in 1 allocation   big_site") == 0);
    s.expand(false);  // small_site: already folded
    s.move(1);
    s.expand(false);
    CHECK_FALSE(has(s.lines(true), "#1"));
}

TEST_CASE("stack list: what is said when there are no stacks", "[tui][detail]") {
    Report r;
    StackList s;
    s.update(r, 7);
    CHECK(s.cursor() == -1);
    s.toggle();  // nothing to toggle: no crash
    CHECK(has(s.lines(false), "press t"));
    CHECK(has(s.lines(true), "no outstanding heap allocations"));
    r.growth_stacks = {stack(7, 5, 4096, {"touch_pages"})};
    s.update(r, 7);
    auto lines = s.lines(true);
    CHECK_FALSE(has(lines, "no growth stacks yet"));
    CHECK(has(lines, "[+] 4.0 KiB   touch_pages"));
}

TEST_CASE("stack list: a process's Python objects, their totals and stacks apart from the heap",
          "[tui][detail][python]") {
    Report r;
    ProcessStats p;
    p.pid = 7, p.epoch = 1, p.comm = "python3.11";
    p.py_bytes = 3200, p.py_peak_bytes = 6400, p.py_allocs_total = 200, p.py_frees_total = 100;
    r.processes = {p};
    r.stacks = {stack(7, 1, 100, {"PyMem_Malloc", "main"})};
    ReportStack py = stack(7, 9, 3200, {"build", "<module>"});
    py.stats.allocs = 100;
    py.frames[0].kind = py.frames[1].kind = FrameKind::Python;
    r.python_stacks = {py, stack(8, 10, 999, {"other_process"})};
    StackList s;
    s.update(r, 7);
    REQUIRE(s.size() == 2);
    auto lines = s.lines(true);
    CHECK(has(lines, "Python objects (pymalloc, not in heap): 3.1 KiB outstanding in 100 objects, peak 6.2 KiB"));
    CHECK(has(lines, "[+] 3.1 KiB in 100 objects   build"));
    CHECK_FALSE(has(lines, "other_process"));
    // The Python section comes after the heap's and growth's.
    CHECK(texts(lines).back().find("[+] 3.1 KiB in 100 objects") == 0);
    // Expanded like any stack.
    s.move(1);
    s.toggle();
    CHECK(has(s.lines(true), "#1   <module>"));
    // Sampled in-process: estimates, said so.
    r.processes[0].py_sampled = true;
    s.update(r, 7);
    CHECK(has(s.lines(true), "Python objects (pymalloc, not in heap; ESTIMATES)"));
    // A process without a Python domain has no such section.
    r.processes[0].py_allocs_total = r.processes[0].py_frees_total = 0;
    r.python_stacks.clear();
    s.update(r, 7);
    CHECK_FALSE(has(s.lines(true), "Python objects"));
}
