// The command line, parsed (main.cpp) into what the session needs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernel/config.h"
#include "model/stack.h"
#include "views/export/files.h"
#include "views/metrics.h"

namespace memtop {

struct Options {
    std::vector<int> pids;                       // -p
    std::vector<std::string> command;            // -- CMD ARGS...
    bool follow = false;                         // -f: also the processes CMD starts
    bool heap_all = false;                       // --heap-all
    std::string cgroup;                          // --cgroup PATH (v2, under /sys/fs/cgroup)
    std::string container;                       // --container ID (a runtime's id, or a prefix of it)
    std::string lines;                           // --lines FILE: per-line listing of one source file
    double interval = 5.0;                       // -d SEC
    size_t top = 10;                             // -T N
    StackOrder order = StackOrder::Outstanding;  // --sort: which heap stacks a report shows
    std::optional<double> min_age;               // --min-age SEC: heap stacks count only older blocks
    bool json = false;                           // --json
    std::string output;                          // -o FILE: the reports go there, not to stdout
    bool batch = false;                          // -b: print reports even on a terminal (no live screen)
    std::optional<size_t> iterations;            // -n N: stop after N reports (the last is the final one)
    bool color = true;                           // --no-color, or NO_COLOR set: the screen draws without colour
    std::optional<double> duration;              // --duration SEC
    MapSizes sizes;                              // --max-*
    bool verbose = false;                        // -v
    bool uprobe_multi = true;                    // --no-uprobe-multi turns it off
    bool uprobe_session = true;                  // --no-uprobe-session turns it off
    bool compat_bpf = false;                     // --compat-bpf: the 5.10 build of the BPF programs
    bool frame_pointers_only = false;            // --frame-pointers-only: no unwind tables
    uint64_t sample = 0;                         // --sample BYTES: heap calls sampled every BYTES on average; 0 exact
    bool kernel_sampling = false;         // --kernel-sampling: -- CMD sampled by the probes, no sampler preloaded
    bool exact = false;                   // --exact: no default sampling for --heap-all, --cgroup, --container
    uint64_t fault_sample = 512 * 1024;   // --fault-sample BYTES: growth stacks' mean sampling interval; 0 off
    bool no_mappings = false;             // --no-mappings: no mmap/munmap/mremap/brk tracepoints
    bool python_objects = false;          // --python-objects: Python's object allocator per Python line
    uint64_t python_sample = 0;           // the Python domain's sampling interval (--sample's, or by default
                                          // kDefaultPythonSampleBytes): in-process for -- CMD, else at pymalloc's
                                          // sites in BPF; 0: every object counted at pymalloc's sites (--exact)
    ExportFiles exports;                  // --pprof, --folded: files written from the final report
    std::string record;                   // --record FILE
    double record_interval = 0.1;         // --record-interval SEC: the time series' step
    std::vector<std::string> argv;        // memtop's own command line, for the recording
    bool quiet = false;                   // -q: no reports on stdout (--listen serves them)
    std::string listen;                   // --listen [ADDR:]PORT: /metrics and /report.json over HTTP
    std::string listen_auth;              // --listen-auth FILE: basic auth (USER:PASSWORD in FILE)
    std::string listen_cert, listen_key;  // --listen-cert, --listen-key: HTTPS
    MetricsOptions metrics;               // --metrics-pid-label, --metrics-max-processes
};

}  // namespace memtop
