// Process control for the runtime tests: children on pipes, their output
// split into lines, bounded waits on those lines and on their exit, signals.
// Nothing here knows about memtop.
#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

namespace rt {

// ---------------------------------------------------------------- processes

std::string basename_of(const std::string& path) {
    size_t p = path.find_last_of('/');
    return p == std::string::npos ? path : path.substr(p + 1);
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

std::vector<std::string> nonempty(const std::vector<std::string>& lines) {
    std::vector<std::string> r;
    for (const auto& l : lines)
        if (!l.empty()) r.push_back(l);
    return r;
}

static void close_fd(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
}

static void split_lines(std::string& partial, std::vector<std::string>& lines, bool eof) {
    size_t pos;
    while ((pos = partial.find('\n')) != std::string::npos) {
        std::string l = partial.substr(0, pos);
        if (!l.empty() && l.back() == '\r') l.pop_back();
        lines.push_back(std::move(l));
        partial.erase(0, pos + 1);
    }
    if (eof && !partial.empty()) {
        lines.push_back(partial);
        partial.clear();
    }
}

static bool try_reap(Child& c, bool block) {
    if (c.reaped || c.pid <= 0) return c.reaped;
    int st = 0;
    pid_t r;
    do r = waitpid(c.pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == c.pid) {
        c.reaped = true;
        c.status = st;
    } else if (r < 0) {  // not our child anymore?
        c.reaped = true;
        c.status = 0xff00;  // exit 255
    }
    return c.reaped;
}

Child::~Child() {
    close_stdin();
    if (pid > 0 && !reaped) {
        ::kill(pid, SIGTERM);
        pump_until(
            {this}, [this] { return reaped; }, 3s);
        if (!reaped) {
            ::kill(pid, SIGKILL);
            try_reap(*this, true);
        }
    }
    close_fd(out);
    close_fd(err);
}

int Child::exit_code() const {
    if (!reaped) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

void Child::close_stdin() {
    close_fd(in);
}

bool Child::write_stdin(const std::string& s) {
    if (in < 0) return false;
    const char* p = s.data();
    size_t left = s.size();
    while (left > 0) {
        ssize_t n = ::write(in, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        left -= size_t(n);
    }
    return true;
}

bool Child::signal(int sig) {
    return pid > 0 && !reaped && ::kill(pid, sig) == 0;
}

std::string Child::describe(size_t max_out_lines) const {
    std::ostringstream o;
    o << name << " (pid " << pid << "): ";
    if (!reaped)
        o << "still running";
    else if (WIFEXITED(status))
        o << "exited " << WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        o << "killed by signal " << WTERMSIG(status);
    o << "\n  stderr:";
    for (const auto& l : err_lines) o << "\n    " << l;
    if (!err_partial.empty()) o << "\n    " << err_partial;
    o << "\n  stdout (" << out_lines.size() << " lines), last:";
    size_t from = out_lines.size() > max_out_lines ? out_lines.size() - max_out_lines : 0;
    for (size_t i = from; i < out_lines.size(); i++) {
        std::string l = out_lines[i];
        if (l.size() > 600) l = l.substr(0, 600) + "...";
        o << "\n    " << l;
    }
    return o.str();
}

bool spawn(Child& c, const std::vector<std::string>& argv, bool pipe_stdin, std::string* error) {
    c.name = argv.empty() ? "?" : basename_of(argv[0]);
    c.cmdline.clear();
    for (const auto& a : argv) c.cmdline += a + " ";
    int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, execp[2] = {-1, -1};
    auto fail = [&](const char* what) {
        if (error) *error = std::string(what) + ": " + std::strerror(errno);
        for (int* p : {inp, outp, errp, execp})
            for (int i = 0; i < 2; i++)
                if (p[i] >= 0) close(p[i]);
        return false;
    };
    if ((pipe_stdin && pipe2(inp, O_CLOEXEC) != 0) || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
        pipe2(execp, O_CLOEXEC) != 0)
        return fail("pipe2");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    pid_t pid = fork();
    if (pid < 0) return fail("fork");
    if (pid == 0) {
        // child: only async-signal-safe calls from here on
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaction(s, &sa, nullptr);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        int in_fd = pipe_stdin ? inp[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in_fd < 0 || dup2(in_fd, 0) < 0 || dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0) _exit(126);
        execvp(args[0], args.data());
        int e = errno;
        ssize_t ignored = write(execp[1], &e, sizeof e);
        (void)ignored;
        _exit(127);
    }
    close(execp[1]);
    int e = 0;
    ssize_t n;
    do n = read(execp[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    close(execp[0]);
    if (pipe_stdin) close(inp[0]);
    close(outp[1]);
    close(errp[1]);
    c.pid = pid;
    c.in = pipe_stdin ? inp[1] : -1;
    c.out = outp[0];
    c.err = errp[0];
    fcntl(c.out, F_SETFL, fcntl(c.out, F_GETFL) | O_NONBLOCK);
    fcntl(c.err, F_SETFL, fcntl(c.err, F_GETFL) | O_NONBLOCK);
    if (n == sizeof e) {
        try_reap(c, true);
        errno = e;
        if (error) *error = "exec " + argv[0] + ": " + std::strerror(e);
        return false;
    }
    return true;
}

static void read_fd(int& fd, std::string& partial, std::vector<std::string>& lines) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN) return;
            close_fd(fd);
            split_lines(partial, lines, true);
            return;
        }
        partial.append(buf, size_t(n));
        split_lines(partial, lines, false);
        if (size_t(n) < sizeof buf) return;
    }
}

bool pump_until(const std::vector<Child*>& all, const std::function<bool()>& cond, Millis timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (Child* c : all) try_reap(*c, false);
        if (cond()) return true;
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        std::vector<pollfd> pfds;
        std::vector<std::pair<Child*, bool>> who;  // (child, is_stderr)
        for (Child* c : all) {
            if (c->out >= 0) {
                pfds.push_back({c->out, POLLIN, 0});
                who.push_back({c, false});
            }
            if (c->err >= 0) {
                pfds.push_back({c->err, POLLIN, 0});
                who.push_back({c, true});
            }
        }
        auto left = std::chrono::duration_cast<Millis>(deadline - now).count();
        int wait_ms = int(std::min<long long>(left, 20));
        if (pfds.empty()) {
            bool all_done = true;
            for (Child* c : all) all_done = all_done && c->reaped;
            if (all_done) return cond();
            std::this_thread::sleep_for(Millis(wait_ms));
            continue;
        }
        int r = poll(pfds.data(), pfds.size(), wait_ms);
        if (r < 0 && errno != EINTR) return cond();
        if (r <= 0) continue;
        for (size_t i = 0; i < pfds.size(); i++) {
            if (!pfds[i].revents) continue;
            Child* c = who[i].first;
            if (who[i].second)
                read_fd(c->err, c->err_partial, c->err_lines);
            else
                read_fd(c->out, c->out_partial, c->out_lines);
        }
    }
}

std::optional<std::string> wait_line(const std::vector<Child*>& all, Child& c, bool stderr_stream,
                                     const std::function<bool(const std::string&)>& pred, Millis timeout,
                                     size_t* from) {
    size_t idx = from ? *from : 0;
    std::optional<std::string> found;
    auto& lines = stderr_stream ? c.err_lines : c.out_lines;
    pump_until(
        all,
        [&] {
            for (; idx < lines.size(); idx++) {
                if (pred(lines[idx])) {
                    found = lines[idx];
                    idx++;
                    return true;
                }
            }
            // stream closed: nothing more will come
            return (stderr_stream ? c.err : c.out) < 0;
        },
        timeout);
    if (from) *from = idx;
    return found;
}

bool wait_exit(const std::vector<Child*>& all, Child& c, Millis timeout) {
    if (!pump_until(
            all, [&] { return c.reaped; }, timeout))
        return false;
    // drain what is left (bounded: a grandchild might keep the pipes open)
    pump_until(
        all, [&] { return c.out < 0 && c.err < 0; }, 2s);
    return true;
}

}  // namespace rt
