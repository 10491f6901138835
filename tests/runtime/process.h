// Process control for the runtime tests: children started with their stdout
// and stderr on pipes (stdin too if asked), their output split into lines,
// bounded waits on those lines and on their exit, signals.  Every wait is
// bounded (kTimeout unless told), and a Child that goes out of scope is
// stopped and reaped.  Nothing here knows about memtop.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rt {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// Every wait in the tests is bounded by this (or less).
inline constexpr Millis kTimeout = 30s;

struct Child {
    pid_t pid = -1;
    int in = -1;   // write end of the child's stdin (-1: /dev/null)
    int out = -1;  // read end of stdout
    int err = -1;  // read end of stderr
    std::string out_partial, err_partial;
    std::vector<std::string> out_lines, err_lines;
    bool reaped = false;
    int status = 0;       // raw wait status once reaped
    std::string name;     // basename of argv[0]
    std::string cmdline;  // argv, space-separated, for diagnostics
    // A program's own protocol lines ("ready", "done") come on stderr: so
    // for `memtop --json -- CMD`, whose stdout carries only the reports.
    bool lines_on_stderr = false;

    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child();  // closes stdin, SIGTERM/SIGKILL if still running, reaps

    // exit code, or 128+signal if killed by a signal; -1 if not reaped
    int exit_code() const;
    bool finished() const { return reaped && out < 0 && err < 0; }
    void close_stdin();
    bool write_stdin(const std::string& s);
    bool signal(int sig);
    // for diagnostics: name, status, stderr lines, last stdout lines
    std::string describe(size_t max_out_lines = 3) const;
};

// Start argv[0] (PATH lookup) with stdout/stderr on pipes; stdin on a pipe
// if pipe_stdin, else /dev/null.  Returns false (and fills *error) on failure.
bool spawn(Child& c, const std::vector<std::string>& argv, bool pipe_stdin, std::string* error);

// Read whatever is available from all children, reap exited ones, until
// cond() is true (returns true) or the timeout passes (returns false).
bool pump_until(const std::vector<Child*>& all, const std::function<bool()>& cond, Millis timeout = kTimeout);

// Wait (bounded) until a line on stdout (or stderr) satisfies pred; returns
// the line.  Lines seen before are considered too (from index *from on, and
// *from is advanced past the match when given).
std::optional<std::string> wait_line(const std::vector<Child*>& all, Child& c, bool stderr_stream,
                                     const std::function<bool(const std::string&)>& pred, Millis timeout = kTimeout,
                                     size_t* from = nullptr);
// Wait (bounded) until c exited and its pipes are drained.
bool wait_exit(const std::vector<Child*>& all, Child& c, Millis timeout = kTimeout);

bool starts_with(const std::string& s, const std::string& prefix);
// The lines that are not empty.
std::vector<std::string> nonempty(const std::vector<std::string>& lines);
std::string basename_of(const std::string& path);

}  // namespace rt
