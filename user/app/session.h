// One run of memtop: the loop. It waits on the kernel's events, signals,
// timers and the view's input, and every interval (and once at the end)
// makes a report along the data path: the kernel's snapshot (kernel/) ->
// aggregation (aggregate/) -> names (symbolize/) -> the view (views/).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "aggregate/aggregator.h"
#include "aggregate/ended_targets.h"
#include "app/attacher.h"
#include "app/options.h"
#include "app/proc_facts.h"
#include "kernel/events.h"
#include "kernel/tracer.h"
#include "procinfo/processes.h"
#include "record/deltas.h"
#include "record/recording.h"
#include "serve/server.h"
#include "symbolize/stack_namer.h"
#include "views/view.h"

namespace memtop {

class Session : private SessionControl, private EventSink {
public:
    // Reports go to `view`; without one, to a PrintView (text, or --json).
    explicit Session(Options opt, std::unique_ptr<View> view = nullptr);
    ~Session();
    int run();  // the exit status

private:
    using Clock = std::chrono::steady_clock;

    void load();                                    // the kernel side, and what it says it lacks
    void attach();                                  // the targets of the command line
    void report(bool final);                        // one report, along the data path, to the view
    std::vector<pid_t> helper_pids() const;         // memtop's worker processes, counted in its own cost
    void log_limits() const;                        // what this kernel cannot do, said once
    void warn_full_maps(const LostCounters& lost);  // the first loss to each full map, said once
    // --record (session_record.cpp): the header, a record made by `make`,
    // the per-process time series, the stream's end. A write failure is said
    // once and ends the recording, not the run.
    void start_recording();
    void record(const std::function<nlohmann::json()>& make);
    void record_sample();
    void record_report(const Report& r);
    void finish_recording();
    nlohmann::json run_meta() const;  // the run's metadata: a recording's header, the HTML report's
    // --html (session_html.cpp): a report's point of the time series, and
    // the page from the final report, or from the recording once it ends.
    // summary: the final report as printed (with the processes that ended earlier).
    void html_report(const Report& r, bool final, const Report& summary);
    void finish_html();

    // EventSink: what the kernel reports as it happens.
    void process_ended(const ProcessStats& p) override;
    void process_exec(const EndedInstance& old_image) override;
    void stack_stored(uint32_t pid, uint32_t epoch, uint64_t stack_id) override;
    void unwind_table_needed(uint32_t, const FileKey&) override {}  // the tracer's own

    // SessionControl: what the view asks (session_control.cpp).
    double interval() const override { return interval_; }
    void set_interval(double seconds) override;
    StackOrder stack_order() const override { return aggregator_.order(); }
    void set_stack_order(StackOrder order) override { aggregator_.set_order(order); }
    std::string save() override;  // session_record.cpp
    void quit() override { quit_ = true; }
    void focus(std::optional<uint32_t> pid) override { focus_ = pid; }
    std::string trace_pid(int pid) override;
    std::string untrace_pid(int pid) override;
    bool heap_traced(int pid) const;

    Options opt_;
    std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
    std::unique_ptr<View> view_;
    std::unique_ptr<ReportServer> server_;  // --listen
    bool system_view_ = false;
    bool by_cgroup_ = false;
    std::unique_ptr<Tracer> tracer_;
    std::unique_ptr<Attacher> attacher_;
    Aggregator aggregator_;
    StackNamer namer_;
    ProcFacts facts_;
    SelfMeter self_;
    std::vector<ProcessStats> ended_;        // exit events since the last report
    std::vector<EndedInstance> exec_ended_;  // old images of exec'd processes, purged after a report
    // -p, -- CMD: the run's processes that ended before the final report, for it.
    EndedTargets ended_targets_{opt_.top};

    double interval_ = 0;  // seconds; starts as -d
    bool interval_changed_ = false;
    bool quit_ = false;
    std::optional<uint32_t> focus_;
    std::set<int> view_pids_;  // attached by trace_pid
    std::set<int> hidden_;     // untrace_pid: probes stay, the heap is not reported
    bool warned_full_[std::size(kLostKinds)] = {};
    bool export_failed_ = false;                 // --pprof/--folded/--html/--record could not be written
    std::unique_ptr<RecordingWriter> recorder_;  // --record
    StackDeltaWriter stack_deltas_;              // --record: each report's stacks as changes
    SampleDeltaWriter sample_deltas_;            // --record: each sample's processes as changes
    std::set<uint32_t> reported_pids_;           // --record: the last report's processes, sampled
    std::shared_ptr<const Report> last_report_;  // what the screen's save key writes
    std::vector<nlohmann::json> html_samples_;   // --html without --record: each report's processes
};

}  // namespace memtop
