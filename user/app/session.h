// One run of memtop: attaches to the chosen targets, follows their lifecycle
// events, and hands a report to its view every interval and once at the end.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "app/options.h"
#include "attach/command.h"
#include "attach/targets.h"
#include "kernel/tracer.h"
#include "kernel/unwind/unwind_tables.h"
#include "procinfo/identity.h"
#include "procinfo/proc_maps.h"
#include "symbolize/symbolizer.h"
#include "views/report.h"
#include "views/view.h"

namespace memtop {

class Session : private SessionControl {
public:
    // Reports go to `view`; without one, to a PrintView (text, or --json).
    explicit Session(Options opt, std::unique_ptr<View> view = nullptr);
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
    std::string attach_pid(int pid);  // what was attached, for the log
    void start_command();
    void scan_host();
    void snapshot_maps(uint32_t pid, uint32_t epoch);
    Report build_report(bool final);
    void print(Report r);
    bool targets_gone();
    void add_system_view(Report& r, const std::map<uint32_t, ProcessStats>& heap);
    void add_mapped(Report& r);
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
    struct StackShape {
        bool complete;
        uint64_t last_ip;
    };
    std::map<uint64_t, StackShape> shapes_;
    UnwindSummary unwind_summary(const std::vector<StackStats>& stacks);
    // A stack of the maps, symbolized with the process's maps snapshot.
    ReportStack report_stack(const StackStats& s, AddressKind first);
    std::vector<ProcessStats> ended_;                     // exit events not yet reported
    std::vector<EndedInstance> forget_;                   // instances to purge after a report
    std::set<std::pair<uint64_t, uint64_t>> host_files_;  // --heap-all: files attached
    std::set<int> live_pids_;                             // -p targets still running
    std::string cgroup_dir_;                              // --cgroup/--container: the cgroup v2 directory
    std::set<int> scanned_pids_;                          // cgroup processes whose files have tables

    // The view, and what it asks of the session (session_control.cpp).
    double interval() const override { return interval_; }
    void set_interval(double seconds) override;
    void quit() override { quit_ = true; }
    void focus(std::optional<uint32_t> pid) override { focus_ = pid; }
    std::string trace_pid(int pid) override;
    std::string untrace_pid(int pid) override;
    bool heap_traced(int pid) const;
    void hide_untraced(Report& r);
    std::unique_ptr<View> view_;
    double interval_ = 0;  // seconds; starts as -d
    bool interval_changed_ = false;
    bool quit_ = false;
    std::optional<uint32_t> focus_;
    std::set<int> view_pids_;  // attached by trace_pid
    std::set<int> hidden_;     // untrace_pid: probes stay, the heap is not reported
};

}  // namespace memtop
