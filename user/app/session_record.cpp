// --record FILE: what the session writes to a recording (docs/recording.md).
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>

#include "app/session.h"
#include "util/errors.h"
#include "views/format.h"

namespace memtop {

namespace {

std::string mode_of(const Options& o) {
    if (!o.command.empty()) return "command";
    if (!o.pids.empty()) return "pid";
    if (o.heap_all) return "heap-all";
    if (!o.cgroup.empty()) return "cgroup";
    if (!o.container.empty()) return "container";
    return "system";
}

}  // namespace

nlohmann::json Session::run_meta() const {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    struct utsname u {};
    uname(&u);
    // start_ns: `memtop report --at SECONDS` counts from it (start has whole seconds).
    nlohmann::json meta = {
        {"argv", opt_.argv},
        {"host", host},
        {"kernel", u.release},
        {"start", rfc3339(started_)},
        {"start_ns", std::chrono::duration_cast<std::chrono::nanoseconds>(started_.time_since_epoch()).count()},
        {"mode", mode_of(opt_)},
        {"interval", interval_},
        {"record_interval", opt_.record_interval},
        // --sample: every heap number recorded is an estimate; 0 exact.
        {"sample_bytes", opt_.sample}};
    return meta;
}

void Session::start_recording() {
    if (opt_.record.empty()) return;
    recorder_ = std::make_unique<RecordingWriter>(opt_.record, run_meta());
}

void Session::record(const std::function<nlohmann::json()>& make) {
    if (!recorder_) return;
    try {
        recorder_->write(make());
    } catch (const MemtopError& e) {
        fprintf(stderr, "memtop: %s; recording stopped\n", e.what());
        recorder_.reset();
        export_failed_ = true;
    }
}

// Each heap-traced process's heap now, from the kernel's process map (no
// /proc walk): the time series between reports.
void Session::record_sample() {
    record([&] {
        nlohmann::json procs = nlohmann::json::array();
        for (const auto& p : tracer_->heap_processes())
            procs.push_back({{"pid", p.pid},
                             {"epoch", p.epoch},
                             {"heap_bytes", p.heap_bytes},
                             {"heap_peak_bytes", p.heap_peak_bytes},
                             {"allocs_total", p.allocs_total},
                             {"frees_total", p.frees_total}});
        auto now = std::chrono::system_clock::now().time_since_epoch();
        return nlohmann::json{{"type", "sample"},
                              {"time_ns", std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()},
                              {"processes", std::move(procs)}};
    });
}

void Session::finish_recording() {
    if (!recorder_) return;
    try {
        recorder_->close();
    } catch (const MemtopError& e) {
        fprintf(stderr, "memtop: %s\n", e.what());
        export_failed_ = true;
    }
    recorder_.reset();
}

}  // namespace memtop
