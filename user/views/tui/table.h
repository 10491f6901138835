// The live screen's process table without ncurses: rows from reports,
// columns that fit a width, sorting, filtering, and a cursor that stays on
// its process across refreshes. Pure; tests/unit/tui/test_table.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/report.h"
#include "views/format.h"

namespace memtop::tui {

// In the order they are drawn.
enum class Column { Pid, Comm, Container, Rss, RssPeak, Growth, Heap, HeapPeak, Python, AllocRate };
inline constexpr Column kAllColumns[] = {Column::Pid,     Column::Comm,     Column::Container, Column::Rss,
                                         Column::RssPeak, Column::Growth,   Column::Heap,      Column::HeapPeak,
                                         Column::Python,  Column::AllocRate};

struct ColumnInfo {
    const char* title;
    int width;        // characters, including room for the sort mark (" v")
    bool left;        // text, left-aligned; numbers are right-aligned
    bool descending;  // the natural order when the column is chosen: largest first
};
const ColumnInfo& column_info(Column c);

struct Row {
    uint32_t pid = 0;
    uint32_t epoch = 0;
    std::string comm;
    std::string container;                         // "" when not in a container
    std::optional<int64_t> rss, rss_peak, growth;  // unknown outside the system view (yet)
    bool growing = false;
    std::optional<int64_t> heap, heap_peak;  // unknown when not heap-traced
    std::optional<uint64_t> allocs_total;
    std::optional<double> alloc_rate;  // allocations per second since the previous report
    // The Python domain's bytes (--python-objects: pymalloc's objects, not
    // in heap), for a process whose object allocator memtop counted.
    std::optional<int64_t> python;
    bool exited = false;
};

// The rows of a report. A row's alloc_rate comes from the same process
// instance (pid and epoch) in `prev`, taken `seconds` earlier.
std::vector<Row> rows_of(const Report& r, const std::vector<Row>& prev, double seconds);

// The columns drawn in `width` characters, in drawing order: those that do
// not fit are left out, least useful first. With heap_first (no row has
// resident memory, as with -p today) the heap columns are kept before RSS.
// The Python column is there only when `python` (some row has the domain),
// right after the heap's in usefulness.
std::vector<Column> fit_columns(int width, bool heap_first, bool python = false);

// A cell's text, unpadded: "-" for what is unknown.
std::string cell(const Row& row, Column c);
// The title line and a row's line: columns padded to their widths, one
// space apart; the sorted column's title carries " v" (descending) or " ^".
std::string header_line(const std::vector<Column>& cols, Column sort, bool descending);
std::string row_line(const Row& row, const std::vector<Column>& cols);
// Where column i starts and how wide it is in those lines.
std::pair<int, int> column_span(const std::vector<Column>& cols, size_t i);

// Does the row match a filter text? Case-insensitive substring of the
// command name, the container id or the pid. The empty filter matches all.
bool matches(const Row& row, const std::string& filter);

class Table {
public:
    explicit Table(Column sort = Column::Rss);

    // New rows from a report; the cursor stays on the pid it was on.
    void update(const Report& r);
    const std::vector<Row>& all() const { return all_; }
    const std::vector<Row>& rows() const { return shown_; }  // filtered and sorted

    Column sort_column() const { return sort_; }
    bool descending() const { return descending_; }
    void sort_by(Column c);                                      // in its natural order
    void next_sort(int step, const std::vector<Column>& among);  // the column left (-1) or right (+1)
    void invert();

    const std::string& filter() const { return filter_; }
    void set_filter(const std::string& f);

    int cursor() const { return shown_.empty() ? -1 : cursor_; }
    const Row* selected() const { return shown_.empty() ? nullptr : &shown_[cursor_]; }
    std::optional<uint32_t> selected_pid() const { return pid_; }
    void select_pid(uint32_t pid);  // if it is shown
    void move(int delta);           // clamped to the rows
    void home() { move(-static_cast<int>(shown_.size())); }
    void end() { move(static_cast<int>(shown_.size())); }
    // The first row to draw in a window of `height` rows, so that the
    // cursor is in it (scrolling only as far as needed).
    int first_visible(int height);

private:
    void refresh();
    std::vector<Row> all_, shown_;
    std::chrono::system_clock::time_point time_;
    Column sort_;
    bool descending_;
    std::string filter_;
    std::optional<uint32_t> pid_;  // under the cursor
    int cursor_ = 0;
    int top_ = 0;
};

}  // namespace memtop::tui
