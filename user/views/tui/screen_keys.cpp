// The live screen's keys: what each does in the table, the filter line and
// a process's detail.
#include <algorithm>

#include "util/errors.h"
#include "views/tui/format.h"
#include "views/tui/screen.h"

// Real functions, not macros: ncurses' move() and erase() would shadow
// std::move and Table::move.
#define NCURSES_NOMACROS
#include <ncurses.h>

namespace memtop::tui {

namespace {
constexpr int kEsc = 27;
}  // namespace

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
        case 'o': {
            // Leaks, then allocation hotspots by bytes and by count, then
            // temporary allocations; from the next report on.
            auto next = static_cast<StackOrder>((static_cast<int>(control_->stack_order()) + 1) % 4);
            control_->set_stack_order(next);
            say(std::string("heap stacks by ") + stack_order_name(next) + " from the next report");
            return;
        }
        case 's':
            // The last report as a recording of one report, to read with
            // `memtop report` (its text, --html, --pprof) after the run.
            try {
                say(control_->save());
            } catch (const MemtopError& e) {
                say(e.what(), true);
            }
            return;
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

}  // namespace memtop::tui
