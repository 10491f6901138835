// The processes of the host: which exist, their names, and memtop's own use
// of resources.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace memtop {

// All pids under /proc.
std::vector<int> list_pids();
// The process's comm (/proc/PID/comm), "?" if it cannot be read.
std::string comm_of(int pid);
// The process exists (a zombie too), whether or not memtop may signal it.
bool process_alive(int pid);

// What memtop reads of /proc/PID/stat: the fields after the command name
// (which may hold spaces and ") ").
struct ProcStat {
    char state = '?';        // R, S, D, Z (zombie), X (dead), ...
    uint64_t cpu_ticks = 0;  // user + system, in clock ticks (_SC_CLK_TCK)
};
// nullopt if the process is gone or the line is not one of the kernel's.
std::optional<ProcStat> read_proc_stat(int pid);

// memtop's own resident memory and CPU, its helper processes' included
// (memtop-cfi and memtop-symbols parse files apart from it: a busy host's
// compilers cost them more than memtop itself): the share of one core is
// measured between one sample and the next.
class SelfMeter {
public:
    struct Sample {
        int64_t rss_bytes = 0;
        int64_t rss_anon_bytes = 0;  // of it, anonymous: what memtop costs a host beyond the page cache of its files
        double cpu_seconds = 0;      // user + system since memtop started
        double cpu_percent = 0;      // of one core since the previous sample (or restart())
    };
    // helpers: the pids of memtop's helper processes alive now (0: none).
    // A helper that ended keeps the CPU it was last seen to have used.
    Sample sample(const std::vector<pid_t>& helpers = {});
    // The next share is measured from now (e.g. after loading, so the
    // first report's figure covers the loop alone).
    void restart(const std::vector<pid_t>& helpers = {});

private:
    double last_cpu_ = 0;
    std::map<pid_t, double> helper_cpu_;  // last seen, by helper pid
    double ended_helpers_cpu_ = 0;
    std::chrono::steady_clock::time_point last_at_;
};

}  // namespace memtop
