// --record FILE: what the session writes to a recording (docs/recording.md).
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "app/session.h"
#include "record/report_codec.h"
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
        // -T: the final report's stacks, as `memtop report` rebuilds it.
        {"top", opt_.top},
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

// The time series between reports: each sampled process's heap, resident
// memory (and its split) and mapped bytes, from the kernel maps memtop
// keeps anyway (no /proc walk); only the processes whose numbers changed
// since the previous sample are written (record/deltas.h).
void Session::record_sample() {
    record([&] {
        std::map<uint32_t, nlohmann::json> now;
        std::set<uint32_t> pids = reported_pids_;
        for (int pid : opt_.pids) pids.insert(static_cast<uint32_t>(pid));
        if (auto* cmd = attacher_->command())
            for (int pid : cmd->processes()) pids.insert(static_cast<uint32_t>(pid));
        for (const auto& p : tracer_->heap_processes()) {
            if (hidden_.count(static_cast<int>(p.pid))) continue;
            pids.insert(p.pid);
            now[p.pid] = {{"pid", p.pid},
                          {"epoch", p.epoch},
                          {"heap_bytes", p.heap_bytes},
                          {"heap_peak_bytes", p.heap_peak_bytes},
                          {"allocs_total", p.allocs_total},
                          {"frees_total", p.frees_total}};
            // Its Python domain (--python-objects), when its object
            // allocator has allocated: the estimates when sampled in-process.
            if (p.py_allocs_total || p.py_frees_total) {
                now[p.pid]["py_bytes"] = p.py_bytes;
                now[p.pid]["py_peak_bytes"] = p.py_peak_bytes;
            }
        }
        for (const auto& [pid, r] : tracer_->rss_now()) {
            if (!pids.count(pid)) continue;
            auto& e = now[pid];
            if (!e.contains("pid")) e = {{"pid", pid}, {"epoch", 0}};
            e["rss"] = {{"file", r.file}, {"anon", r.anon}, {"shmem", r.shmem}, {"swap", r.swap}};
            e["rss_bytes"] = r.resident();
            e["rss_peak_bytes"] = r.peak;
        }
        for (const auto& [pid, m] : tracer_->mapped_now()) {
            if (!pids.count(pid)) continue;
            auto& e = now[pid];
            if (!e.contains("pid")) e = {{"pid", pid}, {"epoch", 0}};
            e["mapped_bytes"] = m.bytes;
            e["mapped_peak_bytes"] = m.peak;
        }
        std::vector<uint32_t> gone;
        auto changed = sample_deltas_.changed(std::move(now), gone);
        auto t = std::chrono::system_clock::now().time_since_epoch();
        return nlohmann::json{{"type", "sample"},
                              {"time_ns", std::chrono::duration_cast<std::chrono::nanoseconds>(t).count()},
                              {"processes", std::move(changed)},
                              {"gone", std::move(gone)}};
    });
}

// A report: whole but for its heap stacks, of which only the ones that
// changed since the previous report are written.
void Session::record_report(const Report& r) {
    if (!recorder_) return;
    reported_pids_.clear();
    for (const auto& p : r.processes)
        if (!p.exited) reported_pids_.insert(p.pid);
    record([&] {
        nlohmann::json rep = encode_report(r);
        stack_deltas_.encode(rep);
        return nlohmann::json{{"type", "report"}, {"report", std::move(rep)}};
    });
}

// The screen's save key: the last report as a recording of one report, in
// a new file in the working directory (never over an existing one).
std::string Session::save() {
    if (!last_report_) throw MemtopError(kExitFailure, "nothing to save yet: no report made");
    const Report& r = *last_report_;
    std::time_t t = std::chrono::system_clock::to_time_t(r.time);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char name[64];
    strftime(name, sizeof name, "memtop-%Y%m%dT%H%M%SZ", &tm);
    std::string path = name + std::string(".gz");
    // Two saves in one second: the next free name.
    for (int i = 2; access(path.c_str(), F_OK) == 0 && i < 100; i++) path = name + ("-" + std::to_string(i)) + ".gz";
    nlohmann::json meta = run_meta();
    meta["snapshot"] = true;  // one report of a live run, saved from the screen
    RecordingWriter w(path, meta, /*exclusive=*/true);
    w.write({{"type", "report"}, {"report", encode_report(r)}});
    w.close();
    std::string where = path;
    if (char cwd[4096]; getcwd(cwd, sizeof cwd)) where = std::string(cwd) + "/" + path;
    return "saved to " + where + (r.all_stacks.empty() ? " (its top stacks; with --record, every stack)" : "");
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
