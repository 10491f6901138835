#include "app/session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "attach/targets.h"
#include "kernel/unwind/unwind_tables.h"
#include "record/report_codec.h"
#include "util/errors.h"
#include "util/unique_fd.h"

namespace memtop {

namespace {

// At least this often the ring buffer is read without a wake-up: the kernel
// queues a process's new stacks after its first without one, for as long
// (MEMTOP_STACK_WAKE_NS, bpf/stack.h).
constexpr std::chrono::milliseconds kQuietEventsEvery{50};

void log(const std::string& msg) {
    fprintf(stderr, "memtop: %s\n", msg.c_str());
}

bool is_system_view(const Options& o) {
    return o.pids.empty() && o.command.empty() && !o.heap_all && o.cgroup.empty() && o.container.empty();
}

AggregateOptions aggregate_options(const Options& o) {
    AggregateOptions a;
    a.system_view = is_system_view(o);
    a.top = o.top;
    a.order = o.order;
    a.min_age = o.min_age;
    if (!o.lines.empty()) a.lines_file = o.lines;
    return a;
}

}  // namespace

Session::Session(Options opt, std::unique_ptr<View> view)
    : opt_(std::move(opt)),
      view_(view ? std::move(view) : std::make_unique<PrintView>(opt_.json)),
      aggregator_(aggregate_options(opt_)),
      interval_(opt_.interval) {}
Session::~Session() {
    // memtop exits right after: the slow part of detaching can outlive it.
    if (tracer_) tracer_->detach_after_exit();
}

void Session::process_ended(const ProcessStats& p) {
    ended_.push_back(p);
}

void Session::process_exec(const EndedInstance& old_image) {
    // The old image's memory is gone with it; so are its stacks.
    exec_ended_.push_back(old_image);
    namer_.exec(old_image.pid, old_image.epoch);
}

void Session::stack_stored(uint32_t pid, uint32_t epoch, uint64_t stack_id) {
    // Read the maps while the process is alive: it may be gone by the time
    // the report names its frames.
    namer_.stack_stored(pid, epoch, [&] { return tracer_->stack(stack_id); });
    // --heap-all, --cgroup: a CPython started since memtop did.
    if (opt_.heap_all || by_cgroup_) attacher_->stack_seen(pid, epoch);
}

std::vector<pid_t> Session::helper_pids() const {
    return {tracer_->cfi_worker_pid(), namer_.symbolizer_worker_pid()};
}

void Session::report(bool final) {
    ReportMoment m;
    m.time = std::chrono::system_clock::now();
    m.now = Clock::now();
    m.final = final;
    m.focus = focus_;
    m.hidden = hidden_;
    for (int pid : opt_.pids) m.targets.insert(static_cast<uint32_t>(pid));
    if (auto* cmd = attacher_->command())
        for (int pid : cmd->processes()) m.targets.insert(static_cast<uint32_t>(pid));
    // Every heap stack, named: for the files written at the end, each
    // recorded report, and the pprof endpoint's profile of the moment.
    m.all_stacks = (final && opt_.exports.any()) || recorder_ || server_;
    // A run with targets ends with its summary: every process it traced,
    // those that ended earlier too (listed by the report at their end). The
    // files written at its end have every stack of those.
    const bool keeps_ended = !system_view_ && !opt_.heap_all && !by_cgroup_;
    m.ended_all_stacks = keeps_ended && opt_.exports.any();
    m.glibc_heap = attacher_->glibc_heap();
    auto self = self_.sample(helper_pids());
    m.self.rss_bytes = self.rss_bytes;
    m.self.rss_anon_bytes = self.rss_anon_bytes;
    m.self.cpu_seconds = self.cpu_seconds;
    m.self.cpu_percent = self.cpu_percent;

    // The live blocks (their ages, their footprint) are read for --min-age,
    // and once for the final report: a dump of the allocation table each
    // interval would cost more than the report.
    auto shared = std::make_shared<Report>(
        aggregator_.build(tracer_->snapshot(opt_.min_age.has_value() || final), ended_, facts_, m));
    Report& r = *shared;
    namer_.name(r);
    // Served before it is shown: what a reader of the printed report asks
    // the server for next is this report or a later one. Never changed
    // again: the HTTP threads read it.
    if (server_) server_->publish(shared);
    last_report_ = shared;
    // The summary is what is printed and the files written at the end
    // have; a recording and the server keep each report as it was made.
    std::optional<Report> summary;
    if (final && keeps_ended && ended_targets_.size()) {
        summary = r;
        ended_targets_.add_to(*summary, focus_);
        if (uint64_t n = ended_targets_.not_kept())
            log("the final report lists the first " + std::to_string(ended_targets_.size()) +
                " processes that ended before it; " + std::to_string(n) +
                " more are only in the reports made when they ended");
        if (uint64_t n = ended_targets_.all_stacks_not_kept())
            log("the files written at the end leave out " + std::to_string(n) +
                " stacks of processes that ended before it (more than memtop keeps)");
    }
    const Report& shown = summary ? *summary : r;
    view_->show(shown);
    if (!final && keeps_ended) ended_targets_.keep(r);
    warn_full_maps(r.lost);
    record_report(r);
    html_report(r, final, shown);
    if (final && opt_.exports.any()) {
        try {
            write_export_files(shown, opt_.exports);
        } catch (const MemtopError& e) {
            // The report is out already; the run ends failed, said once.
            log(e.what());
            export_failed_ = true;
        }
    }

    // What was reported of ended processes is not reported again: their
    // kernel records go, with the old images of exec'd ones.
    std::vector<EndedInstance> forget = std::move(exec_ended_);
    exec_ended_.clear();
    for (const auto& p : r.processes) {
        if (!p.exited) continue;
        forget.push_back({p.pid, p.epoch, p.mm_id});
        namer_.forget(p.pid, p.epoch);
        hidden_.erase(static_cast<int>(p.pid));
    }
    ended_.clear();
    tracer_->forget(forget);
}

void Session::load() {
    std::string cgroup_dir;
    // Resolved before anything is loaded: a wrong name is one line and no BPF.
    if (!opt_.cgroup.empty()) cgroup_dir = resolve_cgroup_dir(opt_.cgroup);
    if (!opt_.container.empty()) cgroup_dir = container_cgroup_dir(opt_.container);
    UniqueFd cgroup_fd;
    if (by_cgroup_) {
        cgroup_fd.reset(open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!cgroup_fd) throw MemtopError(kExitNoTarget, "trace cgroup " + cgroup_dir + ": " + strerror(errno));
    }

    TracerConfig tc;
    tc.sizes = opt_.sizes;
    // Printed reports of the system view never trace a heap, so the
    // allocation table (preallocated, about 45 MiB at its default size)
    // shrinks to nothing there unless asked for. The screen keeps it: its
    // `t` traces a process.
    if (system_view_ && !view_->interactive() && opt_.sizes.allocs == MapSizes{}.allocs) tc.sizes.allocs = 1;
    tc.verbose = opt_.verbose;
    tc.uprobe_multi = opt_.uprobe_multi;
    tc.uprobe_session = opt_.uprobe_session;
    tc.force_compat = opt_.compat_bpf;
    tc.dwarf = !opt_.frame_pointers_only;
    tc.fault_sample_bytes = opt_.fault_sample;
    tc.heap_sample_bytes = opt_.sample;
    tc.python_sample_bytes = opt_.python_sample;
    tc.cgroup_fd = cgroup_fd.get();  // the kernel keeps its own reference
    tc.traced_only = !system_view_;
    tc.mappings = !opt_.no_mappings;
    tc.python_objects = opt_.python_objects;
    tracer_ = std::make_unique<Tracer>(tc, static_cast<EventSink&>(*this));
    attacher_ = std::make_unique<Attacher>(opt_, *tracer_, cgroup_dir);
    namer_.set_python(tracer_->python());
    if (opt_.verbose)
        log(tracer_->uses_uprobe_session() ? "attaching with uprobe_multi links and uprobe sessions"
            : tracer_->uses_uprobe_multi() ? "attaching with uprobe_multi links"
                                           : "attaching one perf-event uprobe per probe");
}

void Session::attach() {
    if (system_view_) {
        // Nearly every process runs through the host's libc and friends:
        // their tables now, so the first growth and mapping stacks through
        // them are whole (others are built when a stack first meets them).
        if (auto* tables = tracer_->unwind_tables())
            if (auto self = read_proc_maps(getpid(), nullptr))
                for (const auto& m : *self) {
                    if (m.perms.size() < 3 || m.perms[2] != 'x' || !m.ino || m.path.find(".so") == std::string::npos)
                        continue;
                    tables->load_file({kernel_dev(m.dev), m.ino}, m.path, m.path);
                }
        log("watching every process's resident memory (kernel tracepoints only: no process takes a trap)");
    } else if (!opt_.command.empty()) {
        attacher_->start_command();
    } else if (!opt_.pids.empty()) {
        attacher_->attach_pids();
    } else if (by_cgroup_) {
        attacher_->scan_host();
        log("tracing cgroup " + attacher_->cgroup_dir() + ": " + std::to_string(tracer_->libraries().size()) +
            " libraries, " + std::to_string(tracer_->probe_count()) +
            " probes; processes that share these files take a trap "
            "per allocation too, and are not reported");
    } else {
        log("--heap-all: every malloc and free in every process on this host now takes a uprobe trap, "
            "until memtop exits");
        attacher_->scan_host();
        log("tracing all processes: " + std::to_string(tracer_->libraries().size()) + " libraries, " +
            std::to_string(tracer_->probe_count()) + " probes");
    }
}

// A full map loses data from then on: said once per map, with the option
// that makes it bigger, besides the counters every report carries. The
// live screen shows those counters itself, and stderr would tear it.
void Session::warn_full_maps(const LostCounters& lost) {
    if (view_->interactive()) return;
    for (const auto& k : kLostKinds) {
        size_t i = static_cast<size_t>(k.kind);
        if (!*k.option || !lost[k.kind] || warned_full_[i]) continue;
        warned_full_[i] = true;
        uint32_t size = 0;
        switch (k.kind) {
            case Lost::alloc_map_full:
                size = opt_.sizes.allocs;
                break;
            case Lost::stack_map_full:
                size = opt_.sizes.stacks;
                break;
            case Lost::agg_map_full:
                size = opt_.sizes.aggs;
                break;
            case Lost::proc_map_full:
            case Lost::rss_map_full:
                size = opt_.sizes.procs;
                break;
            case Lost::mapping_map_full:
                size = opt_.sizes.mappings;
                break;
            default:
                break;
        }
        log(std::string("a kernel map is full: ") + k.text + " (" + std::to_string(lost[k.kind]) + " so far); " +
            k.option + " raises its size" + (size ? " (now " + std::to_string(size) + ")" : "") +
            "; every report counts what is lost under \"lost\"");
    }
}

// Said once attaching succeeded, so a failure stays a single line.
void Session::log_limits() const {
    if (opt_.fault_sample && !tracer_->growth_stacks())
        log("no growth stacks on this kernel: page-fault stacks need Linux 5.17 (bpf_loop, bpf_find_vma) and "
            "the full BPF build; resident memory per process is still exact");
    if (!tracer_->unwinder_error().empty())
        log(tracer_->unwinder_error() + "; stacks are walked by frame pointers only");
    if (!opt_.no_mappings && !tracer_->mappings())
        log("no mapping stacks: " + tracer_->mappings_unavailable() +
            "; anonymous memory mapped outside malloc is still in each process's resident memory");
    if (tracer_->compat())
        log(std::string(opt_.compat_bpf ? "--compat-bpf"
                                        : "this kernel lacks task storage for tracing programs "
                                          "or BPF atomics (Linux 5.12)") +
            ": using the compat BPF build, whose peaks are exact only while one thread allocates at a time");
}

int Session::run() {
    by_cgroup_ = !opt_.cgroup.empty() || !opt_.container.empty();
    system_view_ = is_system_view(opt_);

    // Signals arrive through a signalfd, in the same loop as the events.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    UniqueFd sfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));

    // Its threads start now, with these signals blocked (they are the
    // loop's), and before anything is traced: a port in use is one error.
    if (!opt_.listen.empty()) {
        server_ = std::make_unique<ReportServer>(parse_listen(opt_.listen), opt_.metrics,
                                                 ListenSecurity{opt_.listen_auth, opt_.listen_cert, opt_.listen_key});
        log("serving /metrics and /report.json on " + opt_.listen + " (port " + std::to_string(server_->port()) +
            (opt_.listen_cert.empty() ? "" : ", https") + (opt_.listen_auth.empty() ? "" : ", basic auth") + ")");
    }
    load();
    attach();
    log_limits();
    start_recording();
    TracedCommand* cmd = attacher_->command();
    bool rescan = opt_.heap_all || by_cgroup_;

    view_->start(*this);
    // Reports, ring-buffer events, signals and the view's input (a
    // terminal's keys) are all handled here, in this one thread.
    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    auto watch = [&](int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
    };
    watch(tracer_->epoll_fd());
    watch(sfd.get());
    std::vector<int> view_fds = view_->fds();
    for (int fd : view_fds) watch(fd);

    auto start = Clock::now();
    // The first report's CPU share covers the loop, not loading and attaching.
    self_.restart(helper_pids());
    auto seconds = [](double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    };
    auto interval = seconds(interval_);
    // Someone watching a screen sees the first numbers within a second.
    auto next_report = start + (view_->interactive() ? std::min(interval, seconds(1)) : interval);
    size_t reports = 0;
    auto next_scan = start + std::chrono::seconds(1);
    auto record_every = seconds(opt_.record_interval);
    auto next_sample = start + record_every;
    std::optional<Clock::time_point> end_at;
    if (opt_.duration) end_at = start + seconds(*opt_.duration);
    bool stop = false;
    auto events_read = start;

    // The Python frames of pid's stacks not named yet, every event read first.
    auto name_python = [&](int pid) {
        if (auto* py = tracer_->python()) {
            tracer_->consume_events();
            py->name_all(static_cast<uint32_t>(pid));
        }
    };
    TracedCommand::Hooks hooks;
    hooks.at_exit = [&](int pid) {
        // The process is about to exit with its memory still mapped; its
        // code objects too.
        for (const auto& p : tracer_->heap_processes())
            if (static_cast<int>(p.pid) == pid) namer_.snapshot(p.pid, p.epoch);
        name_python(pid);
    };
    hooks.at_signal = [&](int pid, int sig) {
        // Held at Py_FinalizeEx (Attacher::command_exec): its code objects
        // are about to be freed, its stacks are named first.
        if (sig != SIGURG || !tracer_->python_hold_fired(pid)) return false;
        name_python(pid);
        return true;
    };
    hooks.at_exec = [&](int pid) { attacher_->command_exec(pid); };
    hooks.at_fork = [&](int pid) { attacher_->command_fork(pid); };

    while (!stop) {
        auto now = Clock::now();
        auto wake = next_report;
        if (rescan) wake = std::min(wake, next_scan);
        if (recorder_) wake = std::min(wake, next_sample);
        if (end_at) wake = std::min(wake, *end_at);
        int timeout_ms = static_cast<int>(
            std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1));
        if (!opt_.pids.empty()) timeout_ms = std::min(timeout_ms, 200);  // -p targets are polled for exit
        // Events the kernel queued without waking memtop (bpf/stack.h's
        // new stacks after a process's first) are read this often.
        timeout_ms = std::min(timeout_ms, static_cast<int>(kQuietEventsEvery.count()));

        epoll_event events[8];
        int n = epoll_wait(ep.get(), events, 8, timeout_ms);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == tracer_->epoll_fd()) {
                tracer_->consume_events();
                events_read = Clock::now();
            } else if (std::find(view_fds.begin(), view_fds.end(), fd) != view_fds.end()) {
                view_->on_ready(fd, events[i].events);
            } else {
                signalfd_siginfo si;
                while (read(sfd.get(), &si, sizeof si) == (ssize_t)sizeof si) {
                    if (si.ssi_signo == SIGCHLD) {
                        if (cmd) cmd->on_child_state(hooks);
                    } else if (cmd) {
                        // A terminal's Ctrl-C reaches CMD itself; a signal
                        // sent to memtop alone is passed on. Either way
                        // memtop waits for CMD, like `time` does.
                        if (si.ssi_code != SI_KERNEL) cmd->signal(static_cast<int>(si.ssi_signo));
                    } else {
                        stop = true;
                    }
                }
            }
        }
        now = Clock::now();
        if (now - events_read >= kQuietEventsEvery) {
            tracer_->consume_events();
            events_read = now;
        }
        if (quit_) stop = true;
        if (interval_changed_) {
            interval = seconds(interval_);
            next_report = now + interval;
            interval_changed_ = false;
        }
        if (cmd && cmd->exited()) stop = true;
        if (attacher_->targets_gone()) stop = true;
        if (end_at && now >= *end_at) stop = true;
        if (stop) break;
        if (recorder_ && now >= next_sample) {
            record_sample();
            next_sample += record_every;
            if (next_sample < now) next_sample = now + record_every;
        }
        if (rescan && now >= next_scan) {
            attacher_->scan_host();  // processes started since, with libraries not yet seen
            next_scan = now + std::chrono::seconds(1);
        }
        if (now >= next_report) {
            if (opt_.iterations && ++reports >= *opt_.iterations) break;  // the last one is the final report
            tracer_->consume_events();
            // CMD's exit event can come before the SIGCHLD that ends the
            // loop. Its final numbers belong in the final report, which
            // follows the reap: look again shortly instead.
            if (cmd && std::any_of(ended_.begin(), ended_.end(),
                                   [&](const ProcessStats& p) { return static_cast<int>(p.pid) == cmd->pid(); })) {
                next_report = now + std::chrono::milliseconds(100);
                continue;
            }
            report(false);
            next_report += interval;
            if (next_report < now) next_report = now + interval;
        }
    }

    tracer_->consume_events();
    report(true);
    finish_recording();
    finish_html();
    if (export_failed_) return kExitFailure;
    if (cmd) {
        if (!cmd->exited()) {
            log("stopped before " + opt_.command[0] + " exited; it keeps running (pid " + std::to_string(cmd->pid()) +
                ")");
            return kExitOk;
        }
        return cmd->exit_status();
    }
    return kExitOk;
}

}  // namespace memtop
