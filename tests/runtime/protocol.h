// The memtop run protocols of the runtime tests: memtop started in its
// modes (`-- CMD`, `-p PID`), waited for until it says it is tracing,
// stopped, and its NDJSON reports collected; the test programs driven by
// the protocol of tests/progs/common.h (ready, go, done, EOF).
#pragma once

#include <signal.h>

#include <optional>
#include <string>
#include <vector>

#include "process.h"
#include "reports.h"

namespace rt {

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

// The first report (an NDJSON line) memtop prints after line `seen` of its
// stdout, parsed; `seen` moves past it.
std::optional<json> next_report(const std::vector<Child*>& all, Child& memtop, size_t& seen);

}  // namespace rt
