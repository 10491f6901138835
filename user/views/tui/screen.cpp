#include "views/tui/screen.h"

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
#include "views/text.h"
#include "views/tui/format.h"
#include "views/tui/terminfo.h"

// Real functions, not macros: ncurses' move() and erase() would shadow
// std::move and Table::move.
#define NCURSES_NOMACROS
#include <ncurses.h>

namespace memtop::tui {

namespace {

constexpr size_t kKeptErrLines = 500;
constexpr auto kMessageFor = std::chrono::seconds(6);

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

}  // namespace memtop::tui
