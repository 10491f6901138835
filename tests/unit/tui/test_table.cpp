#include <catch2/catch.hpp>

#include "views/tui/table.h"

using namespace memtop;
using namespace memtop::tui;

namespace {

ProcessStats proc(uint32_t pid, const std::string& comm, int64_t rss, std::optional<int64_t> heap = std::nullopt) {
    ProcessStats p;
    p.pid = pid;
    p.epoch = 1;
    p.comm = comm;
    RssStats r;
    r.anon = rss;
    r.peak = rss * 2;
    p.rss = r;
    p.heap_traced = heap.has_value();
    p.heap_bytes = heap.value_or(0);
    p.heap_peak_bytes = heap.value_or(0);
    return p;
}

Report report(std::vector<ProcessStats> procs, int seconds = 0) {
    Report r;
    r.time = std::chrono::system_clock::from_time_t(1795313400 + seconds);
    r.processes = std::move(procs);
    return r;
}

std::vector<uint32_t> pids(const Table& t) {
    std::vector<uint32_t> out;
    for (const auto& r : t.rows()) out.push_back(r.pid);
    return out;
}

}  // namespace

TEST_CASE("table: sorted by the chosen column, unknown values last either way", "[tui][table]") {
    Table t(Column::Rss);
    t.update(report({proc(10, "small", 100), proc(20, "big", 900, 50), proc(30, "mid", 500, 70)}));
    CHECK(pids(t) == std::vector<uint32_t>{20, 30, 10});
    t.invert();
    CHECK(pids(t) == std::vector<uint32_t>{10, 30, 20});
    t.sort_by(Column::Heap);  // natural order: largest first
    CHECK(t.descending());
    CHECK(pids(t) == std::vector<uint32_t>{30, 20, 10});  // 10 is not heap-traced
    t.invert();
    CHECK(pids(t) == std::vector<uint32_t>{20, 30, 10});
    t.sort_by(Column::Comm);
    CHECK_FALSE(t.descending());
    CHECK(pids(t) == std::vector<uint32_t>{20, 30, 10});  // big, mid, small
    t.sort_by(Column::Pid);
    CHECK(pids(t) == std::vector<uint32_t>{10, 20, 30});
}

TEST_CASE("table: < and > step through the columns shown, wrapping", "[tui][table]") {
    Table t(Column::Rss);
    std::vector<Column> shown = {Column::Pid, Column::Comm, Column::Rss};
    t.next_sort(1, shown);
    CHECK(t.sort_column() == Column::Pid);
    t.next_sort(-1, shown);
    CHECK(t.sort_column() == Column::Rss);
    t.next_sort(-1, shown);
    CHECK(t.sort_column() == Column::Comm);
}

TEST_CASE("table: the cursor stays on its process across refreshes and sorting", "[tui][table]") {
    Table t(Column::Rss);
    t.update(report({proc(10, "a", 100), proc(20, "b", 900), proc(30, "c", 500)}));
    t.move(1);  // 30
    REQUIRE(t.selected_pid() == 30u);
    // 30 grows past everyone: the cursor moves with it.
    t.update(report({proc(10, "a", 100), proc(20, "b", 900), proc(30, "c", 5000)}, 1));
    CHECK(t.cursor() == 0);
    CHECK(t.selected()->pid == 30);
    t.sort_by(Column::Pid);
    CHECK(t.cursor() == 2);
    CHECK(t.selected()->pid == 30);
    // When it exits, the cursor keeps its place and takes the process there.
    t.update(report({proc(10, "a", 100), proc(20, "b", 900)}, 2));
    CHECK(t.cursor() == 1);
    CHECK(t.selected_pid() == 20u);
    t.home();
    CHECK(t.selected_pid() == 10u);
    t.end();
    CHECK(t.selected_pid() == 20u);
    t.move(100);
    CHECK(t.cursor() == 1);
}

TEST_CASE("table: the filter matches name, container and pid, case-insensitively", "[tui][table]") {
    auto boxed = proc(4242, "nginx", 300);
    boxed.container = "0123456789abcdef";
    Table t(Column::Pid);
    t.update(report({proc(10, "Leaky", 100), proc(20, "bash", 900), boxed}));
    t.set_filter("leak");
    CHECK(pids(t) == std::vector<uint32_t>{10});
    t.set_filter("89AB");
    CHECK(pids(t) == std::vector<uint32_t>{4242});
    t.set_filter("424");
    CHECK(pids(t) == std::vector<uint32_t>{4242});
    t.set_filter("nothing");
    CHECK(t.rows().empty());
    CHECK(t.selected() == nullptr);
    CHECK(t.cursor() == -1);
    t.set_filter("");
    CHECK(t.rows().size() == 3);
    t.select_pid(20);
    CHECK(t.selected()->pid == 20);
}

TEST_CASE("table: allocations per second from allocs_total between reports", "[tui][table]") {
    auto a = proc(10, "a", 100, 1000);
    a.allocs_total = 100;
    Table t(Column::Rss);
    t.update(report({a}));
    CHECK_FALSE(t.rows()[0].alloc_rate);  // one report: no rate yet
    a.allocs_total = 400;
    t.update(report({a}, 2));
    REQUIRE(t.rows()[0].alloc_rate);
    CHECK(*t.rows()[0].alloc_rate == Approx(150.0));
    // Another instance of the pid (exec): no rate across instances.
    a.epoch = 2;
    a.allocs_total = 500;
    t.update(report({a}, 3));
    CHECK_FALSE(t.rows()[0].alloc_rate);
}

TEST_CASE("table: cells, titles and the sort mark", "[tui][table]") {
    Row r;
    r.pid = 42;
    r.comm = "tab\there";
    r.rss = 1536;
    r.growth = 2048;
    r.growing = true;
    r.alloc_rate = 1234.0;
    CHECK(cell(r, Column::Pid) == "42");
    CHECK(cell(r, Column::Comm) == "tab?here");  // nothing that moves the terminal's cursor
    CHECK(cell(r, Column::Rss) == "1.5 KiB");
    CHECK(cell(r, Column::Growth) == "+2.0 KiB^");
    CHECK(cell(r, Column::Heap) == "-");
    CHECK(cell(r, Column::AllocRate) == "1234");
    r.alloc_rate = 2.25;
    CHECK(cell(r, Column::AllocRate) == "2.2");
    std::vector<Column> cols = {Column::Pid, Column::Comm, Column::Rss};
    std::string head = header_line(cols, Column::Rss, true);
    CHECK(head == "    PID COMM                 RSS v");
    CHECK(header_line(cols, Column::Pid, false).substr(0, 7) == "  PID ^");
    std::string line = row_line(r, cols);
    CHECK(line == "     42 tab?here           1.5 KiB");
    CHECK(line.size() == head.size());
    CHECK(column_span(cols, 2) == std::make_pair(24, 10));
}

TEST_CASE("table: columns that fit the width, least useful left out first", "[tui][table]") {
    auto all = fit_columns(200, false, true);
    CHECK(all.size() == std::size(kAllColumns));
    CHECK(fit_columns(200, false).size() == std::size(kAllColumns) - 1);  // no process with a Python domain
    auto narrow = fit_columns(40, false);
    CHECK(narrow == std::vector<Column>{Column::Pid, Column::Comm, Column::Rss});
    CHECK(fit_columns(40, true) == std::vector<Column>{Column::Pid, Column::Comm, Column::Heap});
    // Always something, even in a tiny terminal.
    CHECK(fit_columns(5, false) == std::vector<Column>{Column::Pid});
    for (int w : {40, 60, 80, 100, 120}) {
        auto cols = fit_columns(w, false);
        auto [x, width] = column_span(cols, cols.size() - 1);
        CHECK(x + width <= w);
    }
}

TEST_CASE("table: the Python domain's column, for a process that has one, next to its heap", "[tui][table][python]") {
    Report r;
    ProcessStats py;
    py.pid = 7, py.epoch = 1, py.comm = "python3.11", py.heap_bytes = 4096;
    py.py_bytes = 3191776, py.py_allocs_total = 99743;
    ProcessStats c;
    c.pid = 8, c.epoch = 1, c.comm = "cc", c.heap_bytes = 100000;
    r.processes = {py, c};
    auto rows = rows_of(r, {}, 1);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].python == 3191776);
    CHECK_FALSE(rows[1].python);  // no Python domain: "-", not 0
    CHECK(cell(rows[0], Column::Python) == "3.0 MiB");
    CHECK(cell(rows[1], Column::Python) == "-");

    // Kept right after the heap when the terminal is narrow (-p: no RSS yet).
    CHECK(fit_columns(50, true, true) == std::vector<Column>{Column::Pid, Column::Comm, Column::Heap, Column::Python});
    CHECK(fit_columns(50, true, false) ==
          std::vector<Column>{Column::Pid, Column::Comm, Column::Heap, Column::AllocRate});
    auto cols = fit_columns(200, true, true);
    CHECK(header_line(cols, Column::Python, true).find("  PYTHON v") != std::string::npos);

    // Sorted by it: the process with the domain first, the one without last either way.
    Table t;
    t.update(r);
    t.sort_by(Column::Python);
    REQUIRE(t.rows().size() == 2);
    CHECK(t.rows()[0].pid == 7);
    t.invert();
    CHECK(t.rows()[0].pid == 7);
}
