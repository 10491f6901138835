// The memtop run protocols of the runtime tests, built on process.h:
//   - `memtop -- CMD`: run_memtop_cmd (run_memtop for any other argv that
//     runs to its end by itself);
//   - `memtop -p PID`: run_attached, the attach protocol;
//   - the steps both are made of, for the tests whose protocol differs for a
//     reason of their own (memtop started before the program, a program
//     driven through memtop's stdin, memtop killed, ...): start memtop, wait
//     until it says it is tracing, stop it and take its reports; and the
//     test programs' side of tests/progs/common.h (ready, go, done, EOF);
//   - reports read while memtop runs: next_report, report_until.
// The steps REQUIRE what they wait for, with the processes described.
#pragma once

#include <signal.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "process.h"
#include "reports.h"

namespace rt {

// ---------------------------------------------------------------- memtop

std::vector<std::string> memtop_base_args();  // memtop --json -d 1 -T 1000
// memtop --json -d 1 -T 1000 -p PID[,PID...]
std::vector<std::string> memtop_attach_args(const std::vector<int>& pids);

// What a memtop run left behind.
struct Run {
    int pid = -1;  // memtop's
    int exit_code = -1;
    bool timed_out = false;
    std::string diag;  // description for failure messages
    std::optional<json> final_report;
    std::vector<std::string> out_lines, err_lines;
    // Every report line, parsed on first use: only the final report is
    // parsed when the run ends. A system view's reports with -T 1000 are
    // about a megabyte each, and parsing all of them at the end took a
    // minute of a test in a TCG guest (vmtest/).
    const std::vector<json>& reports() const;

private:
    mutable std::optional<std::vector<json>> reports_;
};

// The report that holds the final numbers of the process named `comm`: the
// final report, unless (-f) it ended before CMD did and an interval report
// listed it as exited first; memtop lists an ended process once. Null when
// no report lists it ended.
const json* ended_report(const Run& r, const std::string& comm);

// argv (memtop, or a command that runs it) until it exits by itself; after
// `timeout` it is killed and the Run says timed_out.  REQUIREs that it starts.
Run run_memtop(const std::vector<std::string>& argv, Millis timeout = kTimeout);
// The `-- CMD` protocol: memtop --json -d 1 -T 1000 [extra...] -- cmd...
Run run_memtop_cmd(const std::vector<std::string>& cmd, const std::vector<std::string>& extra = {},
                   Millis timeout = kTimeout);

// Starts memtop (argv[0] is memtop, or a command that runs it) with stdout
// and stderr on pipes; stdin on a pipe if pipe_stdin (memtop -- CMD passes it
// on to CMD).  REQUIREs that it starts.
void start_memtop(Child& memtop, const std::vector<std::string>& argv, bool pipe_stdin = false);
// Waits (bounded) for memtop's stderr line that starts with `prefix`:
// "memtop: tracing ..." once its probes are attached, "memtop: watching ..."
// in the system view.  REQUIREs it; returns it.  `all` are the children to
// pump meanwhile, memtop among them (so for every `all` below).
std::string wait_memtop_ready(const std::vector<Child*>& all, Child& memtop,
                              const std::string& prefix = "memtop: tracing");
// For -p PID,...: waits until memtop traces every one of pids.  memtop may
// print one "memtop: tracing" line per pid as it attaches; a line naming
// none of them counts for all.  REQUIREs it.
void wait_tracing(const std::vector<Child*>& all, Child& memtop, const std::vector<int>& pids);
// Stops memtop with `sig` (0: sends none, memtop ends by itself), waits
// (bounded) until it exited and its output is drained, and returns its Run.
// REQUIREs the signal's delivery and the exit, not its status.
Run stop_memtop(const std::vector<Child*>& all, Child& memtop, int sig, Millis timeout = kTimeout);

// The first report (an NDJSON line) memtop prints after line `seen` of its
// stdout, parsed; `seen` moves past it.
std::optional<json> next_report(const std::vector<Child*>& all, Child& memtop, size_t& seen);
// The first of the next max_reports reports (next_report) for which
// done(report) holds, or nullopt; *last (if given) gets the last report
// read, dumped, for failure messages.
std::optional<json> report_until(const std::vector<Child*>& all, Child& memtop, size_t& seen,
                                 const std::function<bool(const json&)>& done, std::string* last = nullptr,
                                 int max_reports = 6);
// The first of the next max_reports reports that lists a process named
// `comm` as exited (under -f, the interval report made at its end); its pid
// in `pid` (0 before: set when found).
std::optional<json> report_ended(const std::vector<Child*>& all, Child& memtop, size_t& seen, const std::string& comm,
                                 int& pid, std::string* last = nullptr, int max_reports = 6);

// ---------------------------------------------------------------- the test programs

// The test programs' protocol (tests/progs/common.h): a program started
// with --wait prints "ready <pid>", waits for a line on stdin, does its work,
// prints "done" (or its step's name), and exits 0 at EOF on stdin.

// Starts prog (stdin on a pipe) and waits for its "ready <pid>"; returns the
// pid it printed (its own, or its pid in its pid namespace).  `others` are
// pumped meanwhile.
int start_prog(Child& prog, const std::vector<std::string>& argv, const std::vector<Child*>& others = {});
// Waits for "ready <pid>" on c's stdout (a program's; for memtop --json --
// CMD, whose CMD prints on stderr, c.lines_on_stderr) and returns the pid.
// REQUIREs it.
int wait_ready(const std::vector<Child*>& all, Child& c);
// Waits (bounded) for the line `line` on c's stdout (from *from on, moved
// past it, as wait_line).  REQUIREs it.
void expect_line(const std::vector<Child*>& all, Child& c, const std::string& line, size_t* from = nullptr);
// Writes `line` to c's stdin and then expects the line `until` from it.
void tell(const std::vector<Child*>& all, Child& c, const std::string& line, const std::string& until,
          size_t* from = nullptr);
// tell(all, c, "go", until): the line a program waits for after "ready".
void go(const std::vector<Child*>& all, Child& c, const std::string& until = "done", size_t* from = nullptr);
// Closes prog's stdin (it exits at EOF) and waits (bounded) for its exit;
// returns its exit code.  REQUIREs the exit, not its status.
int end_prog(const std::vector<Child*>& all, Child& prog);

// ---------------------------------------------------------------- attach protocol

// The attach protocol, `memtop -p PID`: start each `prog --wait` and wait
// for its "ready <pid>" (the child's own pid), attach `memtop --json -d 1 -T
// 1000 -p PID[,PID...]` and wait until it traces every pid (wait_tracing),
// send each program "go" and wait for its "done", then stop memtop (by
// stop_signal, or let --duration expire, or close the programs' stdin and let
// their exit end it) and take its reports; finally close the programs' stdin
// and require them to exit 0.  Uses REQUIRE.
struct AttachOptions {
    int stop_signal = SIGINT;
    int duration_sec = 0;                 // > 0: pass --duration and wait for memtop to stop by itself
    bool until_programs_exit = false;     // the programs exit after "done", and memtop must end by itself
    std::function<void()> before_attach;  // runs once all programs are ready, before memtop starts
};
struct Attached {
    Run run;
    std::vector<int> pids;  // in the order of the programs
};
Attached run_attached(const std::vector<std::vector<std::string>>& progs, const AttachOptions& opt = {});

}  // namespace rt
