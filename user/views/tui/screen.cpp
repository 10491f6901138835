#include "views/tui/screen.h"

#include "views/text.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "util/errors.h"
#include "views/tui/format.h"
#include "views/tui/terminfo.h"

// Real functions, not macros: ncurses' move() and erase() would shadow
// std::move and Table::move.
#define NCURSES_NOMACROS
#include <ncurses.h>

namespace memtop::tui {

namespace {

constexpr int kEsc = 27;
constexpr size_t kKeptErrLines = 500;
constexpr auto kMessageFor = std::chrono::seconds(6);

// Colours on the terminal's own background, so they read on dark and light
// themes alike; everything else is bold, underline or reverse.
enum Pair { kPairRss = 1, kPairHeap, kPairWarn, kPairGood };

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

bool Screen::available() {
    if (!isatty(STDOUT_FILENO)) return false;
    if (!terminal_addressable(STDOUT_FILENO)) return false;
    if (isatty(STDIN_FILENO)) return true;
    int fd = open("/dev/tty", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    close(fd);
    return true;
}

Screen::Screen(ScreenOptions opt) : opt_(std::move(opt)), table_(opt_.sort) {}

Screen::~Screen() {
    stop();
}

void Screen::start(SessionControl& control) {
    control_ = &control;
    if (isatty(STDIN_FILENO)) {
        input_ = stdin;
    } else {
        input_ = fopen("/dev/tty", "re");
        if (!input_) throw MemtopError(kExitFailure, describe("open /dev/tty for the screen's keys", errno));
        own_input_ = true;
    }
    // Resizes arrive through a signalfd, in the session's loop, rather than
    // through ncurses' own SIGWINCH handler.
    sigset_t winch;
    sigemptyset(&winch);
    sigaddset(&winch, SIGWINCH);
    sigprocmask(SIG_BLOCK, &winch, nullptr);
    winch_fd_ = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);

    term_ = newterm(nullptr, stdout, input_);
    if (!term_) throw MemtopError(kExitFailure, "start the screen: unknown terminal type (TERM); -b prints reports");
    set_term(term_);
    running_ = true;
    cbreak();  // Ctrl-C still interrupts
    noecho();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    if (opt_.color && has_colors()) {
        start_color();
        use_default_colors();
        init_pair(kPairRss, COLOR_CYAN, -1);
        init_pair(kPairHeap, COLOR_MAGENTA, -1);
        init_pair(kPairWarn, COLOR_RED, -1);
        init_pair(kPairGood, COLOR_GREEN, -1);
        color_ = true;
    }

    // What memtop says on stderr would scribble over the screen: it is shown
    // on the bottom line instead, and replayed on the terminal at the end.
    if (isatty(STDERR_FILENO)) {
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
            // The loop that drains the pipe is the one that writes to it: a
            // full pipe must not block memtop. Room for 1 MiB between two
            // turns of the loop (best effort); beyond, a write fails rather
            // than waits.
            fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
            fflush(stderr);
            saved_err_ = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
            dup2(p[1], STDERR_FILENO);
            close(p[1]);
            err_read_ = p[0];
        }
    }
    draw();
}

void Screen::stop() {
    if (!running_) return;
    running_ = false;
    endwin();
    delscreen(term_);
    term_ = nullptr;
    if (own_input_ && input_) fclose(input_);
    input_ = nullptr;
    if (winch_fd_ >= 0) close(winch_fd_);
    winch_fd_ = -1;
    if (saved_err_ >= 0) {
        read_messages();
        fflush(stderr);
        dup2(saved_err_, STDERR_FILENO);
        clearerr(stderr);
        close(saved_err_);
        saved_err_ = -1;
        close(err_read_);
        err_read_ = -1;
        if (!err_partial_.empty()) err_lines_.push_back(err_partial_);
        if (err_dropped_) fprintf(stderr, "memtop: (%zu earlier messages not kept)\n", err_dropped_);
        for (const auto& l : err_lines_) fprintf(stderr, "%s\n", l.c_str());
        err_lines_.clear();
    }
}

std::vector<int> Screen::fds() const {
    std::vector<int> out;
    if (input_) out.push_back(fileno(input_));
    if (winch_fd_ >= 0) out.push_back(winch_fd_);
    if (err_read_ >= 0) out.push_back(err_read_);
    return out;
}

void Screen::on_ready(int fd, uint32_t events) {
    if (!running_) return;
    if (fd == winch_fd_) {
        signalfd_siginfo si;
        while (read(winch_fd_, &si, sizeof si) == (ssize_t)sizeof si) {
        }
        winsize ws{};
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
            resizeterm(ws.ws_row, ws.ws_col);
        draw();
        return;
    }
    if (fd == err_read_) {
        read_messages();
        draw();
        return;
    }
    bool any = false;
    for (int key; (key = getch()) != ERR;) {
        any = true;
        on_key(key);
        if (!running_) return;
    }
    // The terminal went away: nothing more can be read, nor shown.
    if (!any && (events & (EPOLLHUP | EPOLLERR))) {
        control_->quit();
        return;
    }
    draw();
}

void Screen::read_messages() {
    char buf[4096];
    for (;;) {
        ssize_t n = read(err_read_, buf, sizeof buf);
        if (n <= 0) break;
        err_partial_.append(buf, static_cast<size_t>(n));
    }
    size_t nl;
    while ((nl = err_partial_.find('\n')) != std::string::npos) {
        std::string line = err_partial_.substr(0, nl);
        err_partial_.erase(0, nl + 1);
        if (line.empty()) continue;
        say(line.rfind("memtop: ", 0) == 0 ? line.substr(8) : line);
        err_lines_.push_back(std::move(line));
        if (err_lines_.size() > kKeptErrLines) {
            err_lines_.pop_front();
            err_dropped_++;
        }
    }
}

void Screen::say(const std::string& message, bool error) {
    message_ = message;
    message_error_ = error;
    message_until_ = std::chrono::steady_clock::now() + kMessageFor;
}

void Screen::show(const Report& r) {
    if (r.final) {
        // The screen closes and the final report stays on the terminal, as
        // it would without the screen.
        stop();
        std::string out = render_text(r) + "\n";
        fwrite(out.data(), 1, out.size(), stdout);
        fflush(stdout);
        return;
    }
    if (!running_) return;
    if (opt_.shares_terminal) clearok(curscr, TRUE);
    if (paused_) {
        pending_ = r;
    } else {
        apply(r);
    }
    draw();
}

void Screen::apply(const Report& r) {
    table_.update(r);
    history_.record(table_.all(), detail_pid_);
    if (detail_pid_) {
        stacks_.update(r, *detail_pid_);
        for (const auto& row : table_.all())
            if (row.pid == *detail_pid_) detail_row_ = row;
    }
    last_ = r;
}

// ------------------------------------------------------------------ keys

void Screen::on_key(int key) {
    if (key == KEY_RESIZE) return;  // drawn after the keys
    if (mode_ == Mode::Help) {
        mode_ = before_help_;
        return;
    }
    if (mode_ == Mode::Filter) return filter_key(key);
    switch (key) {
        case 'q':
        case KEY_F(10):
            control_->quit();
            return;
        case ' ':
        case 'Z':
            paused_ = !paused_;
            if (!paused_ && pending_) {
                apply(*pending_);
                pending_.reset();
            }
            return;
        case '+':
        case '-': {
            double next = next_interval(control_->interval(), key == '+' ? 1 : -1);
            control_->set_interval(next);
            say("a report every " + interval_text(control_->interval()));
            return;
        }
        case 'h':
        case '?':
        case KEY_F(1):
            before_help_ = mode_;
            mode_ = Mode::Help;
            return;
    }
    if (mode_ == Mode::Detail)
        detail_key(key);
    else
        table_key(key);
}

void Screen::table_key(int key) {
    int page = std::max(1, LINES - 7);
    switch (key) {
        case KEY_UP:
            table_.move(-1);
            break;
        case KEY_DOWN:
            table_.move(1);
            break;
        case KEY_PPAGE:
            table_.move(-page);
            break;
        case KEY_NPAGE:
            table_.move(page);
            break;
        case KEY_HOME:
            table_.home();
            break;
        case KEY_END:
            table_.end();
            break;
        case '<':
            table_.next_sort(-1, columns());
            break;
        case '>':
        case KEY_F(6):
            table_.next_sort(1, columns());
            break;
        case 'I':
            table_.invert();
            break;
        case '/':
        case KEY_F(4):
            filter_before_ = table_.filter();
            pid_before_filter_ = table_.selected_pid();
            filter_edit_ = table_.filter();
            mode_ = Mode::Filter;
            break;
        case kEsc:
            if (!table_.filter().empty()) table_.set_filter("");
            break;
        case '\n':
        case '\r':
        case KEY_ENTER:
            open_detail();
            break;
        case 't':
            if (const Row* r = table_.selected()) toggle_trace(r->pid);
            break;
    }
}

void Screen::filter_key(int key) {
    switch (key) {
        case '\n':
        case '\r':
        case KEY_ENTER:
            mode_ = Mode::Table;
            return;
        case kEsc:
            table_.set_filter(filter_before_);
            if (pid_before_filter_) table_.select_pid(*pid_before_filter_);
            mode_ = Mode::Table;
            return;
        case KEY_BACKSPACE:
        case 127:
        case 8:
            if (!filter_edit_.empty()) filter_edit_.pop_back();
            break;
        default:
            if (key >= 0x20 && key < 0x7f && filter_edit_.size() < 64)
                filter_edit_ += static_cast<char>(key);
            else
                return;
    }
    table_.set_filter(filter_edit_);  // the table follows the typing
}

void Screen::detail_key(int key) {
    switch (key) {
        case KEY_UP:
            stacks_.move(-1);
            break;
        case KEY_DOWN:
            stacks_.move(1);
            break;
        case KEY_PPAGE:
            stacks_.move(-10);
            break;
        case KEY_NPAGE:
            stacks_.move(10);
            break;
        case KEY_HOME:
            stacks_.move(-stacks_.size());
            break;
        case KEY_END:
            stacks_.move(stacks_.size());
            break;
        case '\n':
        case '\r':
        case KEY_ENTER:
            stacks_.toggle();
            break;
        case KEY_RIGHT:
            stacks_.expand(true);
            break;
        case KEY_LEFT:
            stacks_.expand(false);
            break;
        case kEsc:
        case KEY_BACKSPACE:
            close_detail();
            break;
        case 't':
            toggle_trace(*detail_pid_);
            break;
    }
}

void Screen::toggle_trace(uint32_t pid) {
    const Row* row = nullptr;
    for (const auto& r : table_.all())
        if (r.pid == pid) row = &r;
    bool traced = row ? row->heap.has_value() : detail_row_.heap.has_value();
    if (!traced) {
        // Attaching can take a while (the kernel visits every process that
        // maps the files): say so before.
        say("attaching to pid " + std::to_string(pid) + "...");
        draw();
    }
    try {
        say(traced ? control_->untrace_pid(static_cast<int>(pid)) : control_->trace_pid(static_cast<int>(pid)));
    } catch (const std::exception& e) {
        say(e.what(), true);
    }
}

void Screen::open_detail() {
    const Row* r = table_.selected();
    if (!r) return;
    detail_pid_ = r->pid;
    detail_row_ = *r;
    detail_top_ = 0;
    stacks_ = StackList();
    if (last_) stacks_.update(*last_, r->pid);
    control_->focus(r->pid);  // its own top stacks come with every report
    mode_ = Mode::Detail;
}

void Screen::close_detail() {
    detail_pid_.reset();
    control_->focus(std::nullopt);
    mode_ = Mode::Table;
}

// ------------------------------------------------------------------ drawing

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
    return fit_columns(COLS, heap_first);
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
        put(y0 + 1, 0, last_ ? "no process matches the filter" : "");
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
                                               "Space pause  +/- interval  q quit";
    put(y, 0, keys);
}

}  // namespace memtop::tui
