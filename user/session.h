// One run of memtop: attaches to the chosen targets, follows their lifecycle
// events, and prints a report every interval and once at the end.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "command.h"
#include "procinfo/identity.h"
#include "options.h"
#include "report.h"
#include "symbolize/proc_maps.h"
#include "symbolize/symbolizer.h"
#include "targets.h"
#include "tracer.h"
#include "unwind/unwind_tables.h"

namespace memtop {

class Session {
public:
    explicit Session(Options opt);
    ~Session();
    int run();  // the exit status

private:
    using Clock = std::chrono::steady_clock;
    struct MapsSnapshot {
        uint32_t epoch = 0;
        std::vector<Mapping> maps;
        Clock::time_point taken;
    };

    void on_event(const memtop_event& e);
    void attach_pids();
    void start_command();
    void scan_host();
    void snapshot_maps(uint32_t pid, uint32_t epoch);
    Report build_report(bool final);
    void print(const Report& r);
    bool targets_gone();
    void add_system_view(Report& r, const std::map<uint32_t, ProcessStats>& heap);
    SelfStats self_stats();
    double self_cpu_ = 0;
    Clock::time_point self_cpu_at_;

    // The system view (no target): every process's resident memory.
    struct SystemProcess {
        std::optional<RssStats> seed;  // from /proc at first sight, until rss_stat fires for it
        RssStats last;
        int64_t prev_resident = -1;
        int grow_streak = 0;
        bool have_identity = false;
        ProcessIdentity identity;
    };
    bool system_view_ = false;
    std::map<uint32_t, SystemProcess> system_;
    Clock::time_point last_report_;

    Options opt_;
    std::unique_ptr<Tracer> tracer_;
    std::unique_ptr<UnwindTables> unwind_;  // null when stacks are walked by frame pointers
    std::unique_ptr<TracedCommand> cmd_;
    Symbolizer symbolizer_;
    AllocatorFinder finder_;
    std::map<uint32_t, MapsSnapshot> maps_;
    // What each stored stack says of itself; stacks never change once stored.
    struct StackShape { bool complete; uint64_t last_ip; };
    std::map<uint64_t, StackShape> shapes_;
    UnwindSummary unwind_summary(const std::vector<StackStats>& stacks);
    // A stack of the maps, symbolized with the process's maps snapshot.
    ReportStack report_stack(const StackStats& s, AddressKind first);
    std::vector<ProcessStats> ended_;                      // exit events not yet reported
    std::vector<std::pair<uint32_t, uint32_t>> forget_;    // instances to purge after a report
    std::set<std::pair<uint64_t, uint64_t>> host_files_;   // --heap-all: files attached
    std::set<int> live_pids_;                              // -p targets still running
    std::string cgroup_dir_;                               // --cgroup/--container: the cgroup v2 directory
    std::set<int> scanned_pids_;                           // cgroup processes whose files have tables
};

}  // namespace memtop
