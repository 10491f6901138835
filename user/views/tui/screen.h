// The live screen: a top-like view of the reports, drawn with ncurses and
// driven by keys. It is a View: the session hands it each report and calls
// it when its descriptors (the terminal's input, SIGWINCH, captured stderr)
// are ready, all in the session's one thread. What it shows comes from the
// reports only; what it asks for goes through SessionControl.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "views/tui/detail.h"
#include "views/tui/table.h"
#include "views/view.h"

struct screen;  // ncurses' SCREEN

namespace memtop::tui {

struct ScreenOptions {
    std::string mode;  // what is traced, for the title: "system view", "pid 42", ...
    bool color = true;
    Column sort = Column::Rss;  // until the user chooses
    // -- CMD: the command writes to the same terminal, so every refresh
    // repaints the whole screen over what it wrote.
    bool shares_terminal = false;
};

class Screen : public View {
public:
    // Whether the screen can run: stdout is a terminal and keys can be read
    // (from stdin, else /dev/tty).
    static bool available();

    explicit Screen(ScreenOptions opt);
    ~Screen() override;  // the terminal is left as it was found
    Screen(const Screen&) = delete;
    Screen& operator=(const Screen&) = delete;

    void start(SessionControl& control) override;
    void show(const Report& r) override;
    std::vector<int> fds() const override;
    void on_ready(int fd, uint32_t events) override;
    bool interactive() const override { return true; }

private:
    // Colours on the terminal's own background, so they read on dark and
    // light themes alike; everything else is bold, underline or reverse.
    enum Pair { kPairRss = 1, kPairHeap, kPairWarn, kPairGood };
    enum class Mode { Table, Filter, Detail, Help };

    void stop();
    void apply(const Report& r);
    void on_key(int key);
    void table_key(int key);
    void filter_key(int key);
    void detail_key(int key);
    void toggle_trace(uint32_t pid);
    void open_detail();
    void close_detail();
    void say(const std::string& message, bool error = false);
    void read_messages();

    std::vector<Column> columns() const;  // those that fit the terminal's width
    void draw();
    void draw_title();
    void draw_table();
    void draw_detail();
    void draw_help();
    void draw_footer();
    void put(int y, int x, const std::string& text, int attr = 0, int width = -1);

    ScreenOptions opt_;
    SessionControl* control_ = nullptr;
    bool running_ = false;
    bool color_ = false;

    // The terminal and its descriptors.
    ::screen* term_ = nullptr;
    FILE* input_ = nullptr;
    bool own_input_ = false;
    int winch_fd_ = -1;
    int err_read_ = -1;   // memtop's stderr, captured while the screen is up
    int saved_err_ = -1;  // the real stderr
    std::string err_partial_;
    std::deque<std::string> err_lines_;  // replayed on the real stderr at the end
    size_t err_dropped_ = 0;

    // What is shown.
    Mode mode_ = Mode::Table;
    Mode before_help_ = Mode::Table;
    Table table_;
    History history_;
    StackList stacks_;
    std::optional<uint32_t> detail_pid_;
    Row detail_row_;  // the last row of the detail's process (it may have exited)
    int detail_top_ = 0;
    std::optional<Report> last_;     // drawn
    std::optional<Report> pending_;  // arrived while paused
    bool paused_ = false;
    std::string filter_edit_, filter_before_;
    std::optional<uint32_t> pid_before_filter_;
    std::string message_;
    bool message_error_ = false;
    std::chrono::steady_clock::time_point message_until_;
};

}  // namespace memtop::tui
