// Drawing the live screen: title, header, table, a process's detail, help.
#include <algorithm>
#include <ctime>

#include "views/tui/format.h"
#include "views/tui/screen.h"

// Real functions, not macros: ncurses' move() and erase() would shadow
// std::move and Table::move.
#define NCURSES_NOMACROS
#include <ncurses.h>

namespace memtop::tui {

namespace {

std::string clock_text(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm;
    localtime_r(&tt, &tm);
    char buf[16];
    strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

const char* const kHelp[] = {
    "memtop: live screen keys",
    "",
    "  Up/Down PgUp/PgDn Home/End   move the cursor (it stays on its process across refreshes)",
    "  < > or F6                    sort by the column to the left / right",
    "  I                            invert the sort order",
    "  / or F4                      filter by name, pid or container: type, Enter applies, Esc cancels",
    "  Esc                          clear the filter; in a detail view, back to the table",
    "  Enter                        details of the selected process: its stacks and a chart",
    "  t                            start heap tracing of the selected process, or stop it",
    "  Space or Z                   pause: the display stays frozen, reports keep coming",
    "  + -                          longer / shorter interval between reports",
    "  o                            heap stacks by outstanding, allocated bytes, allocations, temporary (--sort)",
    "  s                            save the last report (every stack) to memtop-TIME.gz here, for memtop report",
    "  h, F1 or ?                   this help (any key returns)",
    "  q or F10                     quit (a final text report follows, as without the screen)",
    "",
    "In a detail view",
    "  Up/Down                      choose a stack",
    "  Enter                        expand or fold the stack frame by frame (Right expands, Left folds)",
    "  Esc                          back to the table",
    "",
    "Columns: RSS and GROWTH (since the previous report, ^ when it grew in each of the last 3)",
    "come from the kernel's rss_stat tracepoint in the system view; HEAP, HEAP PEAK and ALLOCS/S",
    "only for heap-traced processes. '-' means memtop does not know the value.",
    "",
    "t on a traced process stops it only partly: its heap is no longer reported, but its probes",
    "stay attached (it still takes the traps, and the kernel keeps counting) until memtop exits;",
    "t again shows its heap again, exact.",
    "",
    "--no-color or NO_COLOR turns colour off; -b (or a pipe) prints reports instead of this screen.",
};

}  // namespace

void Screen::put(int y, int x, const std::string& text, int attr, int width) {
    if (y < 0 || y >= LINES || x >= COLS) return;
    int room = COLS - x;
    if (width >= 0) room = std::min(room, width);
    if (room <= 0) return;
    attron(attr);
    mvaddnstr(y, x, text.c_str(), room);
    attroff(attr);
}

void Screen::draw() {
    if (!running_) return;
    ::erase();
    draw_title();
    switch (mode_) {
        case Mode::Help:
            draw_help();
            break;
        case Mode::Detail:
            draw_detail();
            break;
        default:
            draw_table();
            break;
    }
    draw_footer();
    ::refresh();
}

void Screen::draw_title() {
    std::string title = " memtop  " + opt_.mode + "  every " + interval_text(control_->interval());
    if (last_) title += "  " + clock_text(last_->time);
    // --sample: every heap number on the screen is an estimate.
    if (last_ && last_->sample_bytes)
        title += "  heap ESTIMATED (--sample " + std::to_string(last_->sample_bytes) + ")";
    std::string bar = title + std::string(std::max<int>(0, COLS - static_cast<int>(title.size())), ' ');
    put(0, 0, bar, A_REVERSE);
    if (paused_) {
        std::string p = " PAUSED ";
        put(0, std::max(0, COLS - static_cast<int>(p.size())), p,
            A_REVERSE | A_BOLD | (color_ ? COLOR_PAIR(kPairWarn) : 0));
    }
    if (mode_ == Mode::Help) return;
    if (last_) {
        put(1, 0, host_memory_text(last_->host));
        std::string lost = lost_text(last_->lost);
        std::string line = self_text(last_->self) + "   ";
        put(2, 0, line);
        bool nothing = lost == "lost: nothing";
        put(2, static_cast<int>(line.size()), lost, nothing ? 0 : (A_BOLD | (color_ ? COLOR_PAIR(kPairWarn) : 0)));
    } else {
        put(2, 0, "waiting for the first report...");
    }
}

std::vector<Column> Screen::columns() const {
    bool heap_first = std::none_of(table_.all().begin(), table_.all().end(), [](const Row& r) { return r.rss; });
    bool python = std::any_of(table_.all().begin(), table_.all().end(), [](const Row& r) { return r.python; });
    return fit_columns(COLS, heap_first, python);
}

void Screen::draw_table() {
    auto cols = columns();
    std::string status = std::to_string(table_.all().size()) + " processes";
    if (!table_.filter().empty())
        status += ", " + std::to_string(table_.rows().size()) + " shown by filter \"" + table_.filter() + "\"";
    status += "   sorted by " + std::string(column_info(table_.sort_column()).title) +
              (table_.descending() ? " (largest first)" : " (smallest first)");
    put(3, 0, status);

    const int y0 = 4;
    std::string head = header_line(cols, table_.sort_column(), table_.descending());
    head += std::string(std::max<int>(0, COLS - static_cast<int>(head.size())), ' ');
    put(y0, 0, head, A_BOLD | A_UNDERLINE);
    for (size_t i = 0; i < cols.size(); i++)
        if (cols[i] == table_.sort_column()) {
            auto [x, w] = column_span(cols, i);
            put(y0, x, head.substr(x, w), A_BOLD | A_UNDERLINE | (color_ ? COLOR_PAIR(kPairGood) : A_REVERSE));
        }

    int height = LINES - y0 - 2;  // the footer below
    if (height <= 0) return;
    const auto& rows = table_.rows();
    if (rows.empty()) {
        // Targets are always listed; --cgroup and --heap-all list a process
        // from its first allocation.
        const char* none = table_.filter().empty() ? "no process has allocated yet" : "no process matches the filter";
        put(y0 + 1, 0, last_ ? none : "");
        return;
    }
    int top = table_.first_visible(height);
    for (int i = 0; i < height && top + i < static_cast<int>(rows.size()); i++) {
        const Row& r = rows[top + i];
        int y = y0 + 1 + i;
        std::string line = row_line(r, cols);
        bool cur = top + i == table_.cursor();
        if (cur) {
            line += std::string(std::max<int>(0, COLS - static_cast<int>(line.size())), ' ');
            put(y, 0, line, A_REVERSE);
            continue;
        }
        put(y, 0, line, r.exited ? A_DIM : 0);
        // Growth in red, where it is a gain.
        for (size_t c = 0; c < cols.size(); c++)
            if (cols[c] == Column::Growth && r.growth && *r.growth > 0 && color_) {
                auto [x, w] = column_span(cols, c);
                put(y, x, line.substr(x, w), COLOR_PAIR(kPairWarn) | (r.growing ? A_BOLD : 0));
            }
    }
}

void Screen::draw_detail() {
    const Row& r = detail_row_;
    std::string who = "pid " + std::to_string(r.pid) + "  " + cell(r, Column::Comm);
    if (!r.container.empty()) who += "  container " + r.container.substr(0, 12);
    bool gone = std::none_of(table_.all().begin(), table_.all().end(),
                             [&](const Row& x) { return x.pid == r.pid && !x.exited; });
    if (last_ && gone) who += "  (exited)";
    who += r.heap ? "  heap-traced (t stops)" : "  not heap-traced (t starts)";
    put(3, 0, who, A_BOLD);
    std::string nums = "RSS " + cell(r, Column::Rss) + " (peak " + cell(r, Column::RssPeak) + ")  growth " +
                       cell(r, Column::Growth) + "   heap " + cell(r, Column::Heap) + " (peak " +
                       cell(r, Column::HeapPeak) + ")  " + cell(r, Column::AllocRate) + " allocs/s";
    put(4, 0, nums);

    int y = 5;
    int chart_h = LINES >= 30 ? 3 : LINES >= 18 ? 1 : 0;
    if (chart_h > 0) {
        const int label_w = 20;
        int w = std::min<int>(static_cast<int>(history_.capacity()), COLS - label_w - 1);
        auto chart = [&](const char* name, const std::vector<std::optional<int64_t>>& v, int pair) {
            std::optional<int64_t> max, now;
            for (const auto& x : v)
                if (x) max = std::max(max.value_or(0), *x);
            if (!v.empty()) now = v.back();
            std::vector<std::string> label = {std::string(name) + " " + (now ? human_bytes(*now) : "-"),
                                              "max " + (max ? human_bytes(*max) : std::string("-")),
                                              std::to_string(v.size()) + " reports"};
            auto lines = bar_chart(v, std::max(0, w), chart_h);
            for (int i = 0; i < chart_h; i++) {
                put(y + i, 0, i < 3 ? label[i] : "", i == 0 ? A_BOLD : 0, label_w);
                if (!max && i == 0)
                    put(y + i, label_w, "| not known for this process");
                else if (i < static_cast<int>(lines.size()))
                    put(y + i, label_w, "|" + lines[i], color_ ? COLOR_PAIR(pair) : 0);
            }
            y += chart_h;
        };
        chart("RSS", history_.rss(r.pid), kPairRss);
        chart("heap", history_.heap(r.pid), kPairHeap);
    }

    auto lines = stacks_.lines(r.heap.has_value());
    int height = LINES - y - 1;
    if (height <= 0) return;
    // Scroll so the line of the stack under the cursor is shown.
    int cur_line = 0;
    for (size_t i = 0; i < lines.size(); i++)
        if (lines[i].kind == DetailLine::Stack && lines[i].item == stacks_.cursor()) cur_line = static_cast<int>(i);
    if (cur_line < detail_top_) detail_top_ = std::max(0, cur_line - 1);
    if (cur_line >= detail_top_ + height) detail_top_ = cur_line - height + 1;
    detail_top_ = std::clamp(detail_top_, 0, std::max(0, static_cast<int>(lines.size()) - height));
    for (int i = 0; i < height && detail_top_ + i < static_cast<int>(lines.size()); i++) {
        const auto& l = lines[detail_top_ + i];
        int attr = 0;
        if (l.kind == DetailLine::Title) attr = A_BOLD | A_UNDERLINE;
        if (l.kind == DetailLine::Stack && l.item == stacks_.cursor()) attr = A_REVERSE;
        std::string text = l.text;
        if (attr == A_REVERSE) text += std::string(std::max<int>(0, COLS - static_cast<int>(text.size())), ' ');
        put(y + i, 0, text, attr);
    }
}

void Screen::draw_help() {
    int y = 1;
    for (const char* line : kHelp) {
        if (y >= LINES - 1) break;
        put(y, 0, line, y == 1 ? A_BOLD : 0);
        y++;
    }
}

void Screen::draw_footer() {
    int y = LINES - 1;
    if (y < 1) return;
    if (mode_ == Mode::Filter) {
        put(y, 0, "filter: " + filter_edit_ + "_   (Enter applies, Esc cancels)", A_BOLD);
        return;
    }
    if (!message_.empty() && std::chrono::steady_clock::now() < message_until_) {
        put(y, 0, message_, message_error_ ? (A_BOLD | (color_ ? COLOR_PAIR(kPairWarn) : 0)) : A_BOLD);
        return;
    }
    const char* keys = mode_ == Mode::Detail
                           ? "Esc back  Enter expand/fold  t trace  Space pause  +/- interval  h help  q quit"
                       : mode_ == Mode::Help ? "any key returns"
                                             : "h help  / filter  < > sort  I invert  Enter details  t trace  "
                                               "Space pause  +/- interval  s save  q quit";
    put(y, 0, keys);
}

}  // namespace memtop::tui
