#include "views/tui/table.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <map>

namespace memtop::tui {

const ColumnInfo& column_info(Column c) {
    static const ColumnInfo infos[] = {
        {"PID", 7, false, false},      {"COMM", 15, true, false},      {"CONTAINER", 12, true, false},
        {"RSS", 10, false, true},      {"RSS PEAK", 10, false, true},  {"GROWTH", 11, false, true},
        {"HEAP", 10, false, true},     {"HEAP PEAK", 11, false, true}, {"PYTHON", 10, false, true},
        {"ALLOCS/S", 10, false, true},
    };
    return infos[static_cast<int>(c)];
}

std::vector<Row> rows_of(const Report& r, const std::vector<Row>& prev, double seconds) {
    std::map<std::pair<uint32_t, uint32_t>, const Row*> before;
    for (const auto& p : prev) before[{p.pid, p.epoch}] = &p;
    std::vector<Row> rows;
    rows.reserve(r.processes.size());
    for (const auto& p : r.processes) {
        Row row;
        row.pid = p.pid;
        row.epoch = p.epoch;
        row.comm = p.comm;
        row.container = p.container.value_or("");
        if (p.rss) {
            row.rss = p.rss->resident();
            row.rss_peak = p.rss->peak;
            row.growth = p.growth_bytes;
            row.growing = p.growing;
        }
        if (p.heap_traced) {
            row.heap = p.heap_bytes;
            row.heap_peak = p.heap_peak_bytes;
            row.allocs_total = p.allocs_total;
            auto b = before.find({p.pid, p.epoch});
            if (b != before.end() && b->second->allocs_total && seconds > 0 &&
                p.allocs_total >= *b->second->allocs_total)
                row.alloc_rate = static_cast<double>(p.allocs_total - *b->second->allocs_total) / seconds;
        }
        if (p.py_allocs_total || p.py_frees_total) row.python = p.py_bytes;
        row.exited = p.exited;
        rows.push_back(std::move(row));
    }
    return rows;
}

std::vector<Column> fit_columns(int width, bool heap_first, bool python) {
    // Least useful last: they go first when the terminal is narrow.
    std::vector<Column> by_use = {Column::Pid,     Column::Comm,     Column::Rss,
                                  Column::Heap,    Column::Growth,   Column::AllocRate,
                                  Column::RssPeak, Column::HeapPeak, Column::Container};
    if (heap_first)
        by_use = {Column::Pid, Column::Comm,   Column::Heap,    Column::AllocRate, Column::HeapPeak,
                  Column::Rss, Column::Growth, Column::RssPeak, Column::Container};
    // A CPython's objects are not in its heap: their column next to it.
    if (python) by_use.insert(std::find(by_use.begin(), by_use.end(), Column::Heap) + 1, Column::Python);
    std::vector<Column> kept;
    int used = -1;  // n columns take n - 1 separators
    for (Column c : by_use) {
        int w = column_info(c).width + 1;
        if (used + w > width && !kept.empty()) break;
        kept.push_back(c);
        used += w;
    }
    std::sort(kept.begin(), kept.end());
    return kept;
}

namespace {

std::string printable(const std::string& s) {
    std::string out = s;
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    return out;
}

std::string fit(std::string s, int width, bool left) {
    if (static_cast<int>(s.size()) > width) s.resize(width);
    std::string pad(width - s.size(), ' ');
    return left ? s + pad : pad + s;
}

std::string bytes_or_dash(const std::optional<int64_t>& v) {
    return v ? human_bytes(*v) : "-";
}

std::string rate(double per_sec) {
    char buf[32];
    if (per_sec < 10)
        snprintf(buf, sizeof buf, "%.1f", per_sec);
    else if (per_sec < 100000)
        snprintf(buf, sizeof buf, "%.0f", per_sec);
    else if (per_sec < 100e6)
        snprintf(buf, sizeof buf, "%.0fk", per_sec / 1e3);
    else
        snprintf(buf, sizeof buf, "%.0fM", per_sec / 1e6);
    return buf;
}

// Ascending order of a column; unknown values compare as nullopt.
template <typename T>
int compare(const std::optional<T>& a, const std::optional<T>& b) {
    if (a == b) return 0;
    if (!a) return 1;  // unknown: after everything, either way
    if (!b) return -1;
    return *a < *b ? -1 : 1;
}

int compare(const Row& a, const Row& b, Column c) {
    switch (c) {
        case Column::Pid:
            return a.pid == b.pid ? 0 : (a.pid < b.pid ? -1 : 1);
        case Column::Comm:
            return a.comm.compare(b.comm) < 0 ? -1 : a.comm == b.comm ? 0 : 1;
        case Column::Container:
            // Processes in no container after those in one.
            if (a.container.empty() != b.container.empty()) return a.container.empty() ? 1 : -1;
            return a.container.compare(b.container) < 0 ? -1 : a.container == b.container ? 0 : 1;
        case Column::Rss:
            return compare(a.rss, b.rss);
        case Column::RssPeak:
            return compare(a.rss_peak, b.rss_peak);
        case Column::Growth:
            return compare(a.growth, b.growth);
        case Column::Heap:
            return compare(a.heap, b.heap);
        case Column::HeapPeak:
            return compare(a.heap_peak, b.heap_peak);
        case Column::Python:
            return compare(a.python, b.python);
        case Column::AllocRate:
            return compare(a.alloc_rate, b.alloc_rate);
    }
    return 0;
}

bool known(const Row& r, Column c) {
    switch (c) {
        case Column::Rss:
            return r.rss.has_value();
        case Column::RssPeak:
            return r.rss_peak.has_value();
        case Column::Growth:
            return r.growth.has_value();
        case Column::Heap:
            return r.heap.has_value();
        case Column::HeapPeak:
            return r.heap_peak.has_value();
        case Column::Python:
            return r.python.has_value();
        case Column::AllocRate:
            return r.alloc_rate.has_value();
        default:
            return true;
    }
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

std::string cell(const Row& row, Column c) {
    switch (c) {
        case Column::Pid:
            return std::to_string(row.pid);
        case Column::Comm:
            return printable(row.comm);
        case Column::Container:
            return printable(row.container.substr(0, 12));
        case Column::Rss:
            return bytes_or_dash(row.rss);
        case Column::RssPeak:
            return bytes_or_dash(row.rss_peak);
        case Column::Growth:
            if (!row.growth) return "-";
            return (*row.growth > 0 ? "+" : "") + human_bytes(*row.growth) + (row.growing ? "^" : "");
        case Column::Heap:
            return bytes_or_dash(row.heap);
        case Column::HeapPeak:
            return bytes_or_dash(row.heap_peak);
        case Column::Python:
            return bytes_or_dash(row.python);
        case Column::AllocRate:
            return row.alloc_rate ? rate(*row.alloc_rate) : "-";
    }
    return "";
}

std::string header_line(const std::vector<Column>& cols, Column sort, bool descending) {
    std::string out;
    for (size_t i = 0; i < cols.size(); i++) {
        const auto& ci = column_info(cols[i]);
        std::string title = ci.title;
        if (cols[i] == sort) title += descending ? " v" : " ^";
        if (i) out += ' ';
        out += fit(title, ci.width, ci.left);
    }
    return out;
}

std::string row_line(const Row& row, const std::vector<Column>& cols) {
    std::string out;
    for (size_t i = 0; i < cols.size(); i++) {
        const auto& ci = column_info(cols[i]);
        if (i) out += ' ';
        // A number's room for the sort mark is not needed in the rows.
        out += fit(cell(row, cols[i]), ci.width, ci.left);
    }
    return out;
}

std::pair<int, int> column_span(const std::vector<Column>& cols, size_t i) {
    int x = 0;
    for (size_t k = 0; k < i && k < cols.size(); k++) x += column_info(cols[k]).width + 1;
    return {x, i < cols.size() ? column_info(cols[i]).width : 0};
}

bool matches(const Row& row, const std::string& filter) {
    if (filter.empty()) return true;
    std::string f = lower(filter);
    return lower(row.comm).find(f) != std::string::npos || lower(row.container).find(f) != std::string::npos ||
           std::to_string(row.pid).find(f) != std::string::npos;
}

Table::Table(Column sort) : sort_(sort), descending_(column_info(sort).descending) {}

void Table::update(const Report& r) {
    double seconds =
        time_ == std::chrono::system_clock::time_point{} ? 0 : std::chrono::duration<double>(r.time - time_).count();
    all_ = rows_of(r, all_, seconds);
    time_ = r.time;
    refresh();
}

void Table::sort_by(Column c) {
    sort_ = c;
    descending_ = column_info(c).descending;
    refresh();
}

void Table::next_sort(int step, const std::vector<Column>& among) {
    if (among.empty()) return;
    auto it = std::find(among.begin(), among.end(), sort_);
    int i = it == among.end() ? 0 : static_cast<int>(it - among.begin());
    int n = static_cast<int>(among.size());
    sort_by(among[((i + step) % n + n) % n]);
}

void Table::invert() {
    descending_ = !descending_;
    refresh();
}

void Table::set_filter(const std::string& f) {
    filter_ = f;
    refresh();
}

void Table::select_pid(uint32_t pid) {
    for (size_t i = 0; i < shown_.size(); i++)
        if (shown_[i].pid == pid) {
            cursor_ = static_cast<int>(i);
            pid_ = pid;
        }
}

void Table::move(int delta) {
    if (shown_.empty()) return;
    cursor_ = std::clamp(cursor_ + delta, 0, static_cast<int>(shown_.size()) - 1);
    pid_ = shown_[cursor_].pid;
}

int Table::first_visible(int height) {
    if (height <= 0 || shown_.empty()) return 0;
    if (cursor_ < top_) top_ = cursor_;
    if (cursor_ >= top_ + height) top_ = cursor_ - height + 1;
    // No empty space below the last row while rows above are hidden.
    top_ = std::clamp(top_, 0, std::max(0, static_cast<int>(shown_.size()) - height));
    return top_;
}

void Table::refresh() {
    shown_.clear();
    for (const auto& r : all_)
        if (matches(r, filter_)) shown_.push_back(r);
    Column c = sort_;
    bool desc = descending_;
    std::stable_sort(shown_.begin(), shown_.end(), [c, desc](const Row& a, const Row& b) {
        // Unknown values last in either order.
        bool ka = known(a, c), kb = known(b, c);
        if (ka != kb) return ka;
        int k = compare(a, b, c);
        if (k != 0) return desc ? k > 0 : k < 0;
        return a.pid < b.pid;
    });
    if (shown_.empty()) {
        cursor_ = 0;
        return;
    }
    // The cursor follows its process; if that is gone (exited, filtered
    // out), it stays at its place and takes the process found there.
    if (pid_) {
        auto it = std::find_if(shown_.begin(), shown_.end(), [&](const Row& r) { return r.pid == *pid_; });
        if (it != shown_.end()) {
            cursor_ = static_cast<int>(it - shown_.begin());
            return;
        }
    }
    cursor_ = std::clamp(cursor_, 0, static_cast<int>(shown_.size()) - 1);
    pid_ = shown_[cursor_].pid;
}

}  // namespace memtop::tui
