// Harness for the memtop runtime tests: spawning processes with pipes,
// bounded waits on their output, memtop report parsing, environment checks.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rt {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

// Every wait in the tests is bounded by this (or less).
inline constexpr Millis kTimeout = 30s;

// ---------------------------------------------------------------- paths

// Path of the memtop binary: $MEMTOP_BIN, else the build-time path
// ($<TARGET_FILE:memtop>), else "".
std::string memtop_path();
// Path of a test program target (e.g. "c_sites_fp"), "" if it was not built.
std::string prog_path(const std::string& target);
// Path of a source file in tests/progs/.
std::string progs_src(const std::string& file);
// 1-based line of the "@line NAME" marker in tests/progs/<file>, 0 if none.
int marker_line(const std::string& file, const std::string& name);

// ---------------------------------------------------------------- environment

// Checks once whether the runtime tests can run (root, memtop present, BPF
// and uprobes usable).  If not: with CI=true records a FAIL, otherwise a WARN
// ("skipped: ...").  Returns false if the test must return early.
bool env_ok();
#define RT_REQUIRE_ENV()           \
    do {                           \
        if (!rt::env_ok()) return; \
    } while (0)
// Same for an optional test program target.
bool have_prog(const std::string& target);
// The running kernel is at least major.minor (uname).
bool kernel_at_least(int major, int minor);
// Kernels where memtop walks stacks with unwind tables and samples page
// faults (bpf_loop, bpf_find_vma: 5.17); older ones get frame pointers only.
inline bool kernel_has_unwinder() {
    return kernel_at_least(5, 17);
}

// ---------------------------------------------------------------- processes

struct Child {
    pid_t pid = -1;
    int in = -1;   // write end of the child's stdin (-1: /dev/null)
    int out = -1;  // read end of stdout
    int err = -1;  // read end of stderr
    std::string out_partial, err_partial;
    std::vector<std::string> out_lines, err_lines;
    bool reaped = false;
    int status = 0;  // raw wait status once reaped
    std::string name;

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

// ---------------------------------------------------------------- memtop

std::vector<std::string> memtop_base_args();  // memtop --json -d 1 -T 1000

struct Run {
    int exit_code = -1;
    bool timed_out = false;
    std::string diag;  // description for failure messages
    std::optional<json> final_report;
    std::vector<json> reports;  // all report lines
    std::vector<std::string> err_lines;
};
// memtop --json -d 1 -T 1000 [extra...] -- cmd...; waits (bounded) for exit.
Run run_memtop_cmd(const std::vector<std::string>& cmd, const std::vector<std::string>& extra = {},
                   Millis timeout = kTimeout);
// Parse all JSON report lines of memtop's stdout (non-JSON lines ignored).
void collect_reports(const Child& memtop, Run& r);

// Attach protocol (tests/progs/common.h): start each `prog --wait`, wait for
// "ready <pid>", attach `memtop ... -p PID[,PID...]`, wait for "memtop:
// tracing" on its stderr, send each program a line, wait for "done", then stop
// memtop (stop_signal, or let --duration expire) and take its reports; finally
// close the programs' stdin and require them to exit 0.  Uses REQUIRE.
struct AttachOptions {
    int stop_signal = SIGINT;
    int duration_sec = 0;  // > 0: pass --duration and wait for memtop to stop by itself
};
struct Attached {
    Run run;
    std::vector<int> pids;  // in the order of the programs
};
Attached run_attached(const std::vector<std::vector<std::string>>& progs, const AttachOptions& opt = {});

// Checks the documented JSON shape of a report (CHECKs).
void check_report_shape(const json& report);

// ---------------------------------------------------------------- reports

struct Sum {
    long long bytes = 0, allocs = 0, alloc_bytes_total = 0, allocs_total = 0;
    int stacks = 0;
};

struct ProcStats {
    bool found = false;
    int pid = 0;
    std::string comm;
    long long heap_bytes = 0, heap_peak_bytes = 0, allocs_total = 0, frees_total = 0;
};

// Does a frame's "function" (string or null) name this function?  Accepts
// the exact name and demangled forms "name(...)".
bool fn_is(const json& frame, const std::string& name);

// The first report (an NDJSON line) memtop prints after line `seen` of its
// stdout, parsed; `seen` moves past it.
std::optional<json> next_report(const std::vector<Child*>& all, Child& memtop, size_t& seen);
// pid's entry in a report's processes, or null.
const json* entry(const json& report, int pid);
std::string fn_of(const json& frame);
std::string basename_of(const std::string& path);

ProcStats proc_stats(const json& report, int pid);
// The process whose comm is (a prefix of, comm is 15 chars max) the given
// program name; falls back to the only process if there is exactly one.
ProcStats proc_by_comm(const json& report, const std::string& prog_name);
std::vector<const json*> stacks_of(const json& report, int pid);
// Stacks of pid whose frames[0] is function `fn`, summed.
Sum sum_frame0(const json& report, int pid, const std::string& fn);
std::vector<const json*> stacks_frame0(const json& report, int pid, const std::string& fn);
// Stacks of pid with any frame naming `fn`, summed.
Sum sum_any_frame(const json& report, int pid, const std::string& fn);
std::vector<const json*> stacks_any_frame(const json& report, int pid, const std::string& fn);
Sum sum_all(const json& report, int pid);
// "fn0 <- fn1 <- ..." for messages
std::string chain_of(const json& stack);
// Compact description of a process's stacks for failure messages.
std::string describe_stacks(const json& report, int pid, size_t max_stacks = 40);

}  // namespace rt
