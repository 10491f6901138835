#include "app/session.h"
#include "attach/program_files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "attach/elf_image.h"
#include "procinfo/proc_status.h"
#include "util/errors.h"

namespace memtop {

namespace {

void log(const std::string& msg) {
    fprintf(stderr, "memtop: %s\n", msg.c_str());
}

std::string comm_of(int pid) {
    FILE* f = fopen(("/proc/" + std::to_string(pid) + "/comm").c_str(), "r");
    if (!f) return "?";
    char buf[64] = {};
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    std::string s(buf);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

bool alive(int pid) {
    return kill(pid, 0) == 0 || errno == EPERM;
}

// A process "is growing" after this many reports in a row with more resident
// memory than the one before.
constexpr int kGrowingIntervals = 3;

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) close(fd);
    }
};

}  // namespace

Session::Session(Options opt, std::unique_ptr<View> view)
    : opt_(std::move(opt)),
      view_(view ? std::move(view) : std::make_unique<PrintView>(opt_.json)),
      interval_(opt_.interval) {}
Session::~Session() = default;

void Session::on_event(const memtop_event& e) {
    switch (e.type) {
        case MEMTOP_EV_NEW_STACK: {
            // Read the maps while the process is alive: it may be gone by the
            // time the report names its frames.
            auto it = maps_.find(e.tgid);
            if (it == maps_.end() || it->second.epoch != e.epoch ||
                Clock::now() - it->second.taken > std::chrono::milliseconds(100))
                snapshot_maps(e.tgid, e.epoch);
            break;
        }
        case MEMTOP_EV_EXIT: {
            // Resident memory is followed for every process; without the system
            // view only heap-traced ones (epoch set) belong in the report.
            if (!system_view_ && e.epoch == 0) break;
            ProcessStats p;
            p.pid = e.tgid;
            p.epoch = e.epoch;
            p.comm.assign(e.comm, strnlen(e.comm, sizeof e.comm));
            p.heap_bytes = e.heap_bytes;
            p.heap_peak_bytes = e.heap_peak_bytes;
            p.allocs_total = e.allocs_total;
            p.frees_total = e.frees_total;
            p.exited = true;
            p.mm_id = e.mm_id;
            if (tracer_->mappings() && (system_view_ || e.epoch)) {
                p.mapped_known = true;
                p.mapped_bytes = e.mapped_bytes;
                p.mapped_peak_bytes = e.mapped_peak_bytes;
            }
            if (!system_view_) p.rss = rss_from_kernel(e.rss, e.rss_peak_bytes);
            if (system_view_) {
                auto it = system_.find(e.tgid);
                RssStats last = rss_from_kernel(e.rss, e.rss_peak_bytes);
                if (it != system_.end()) last.peak = std::max(last.peak, it->second.last.peak);
                p.rss = last;
                p.heap_traced = e.epoch != 0;
                if (it != system_.end() && it->second.have_identity) {
                    p.has_identity = true;
                    p.cgroup = it->second.identity.cgroup;
                    p.container = it->second.identity.container;
                    p.nspid = it->second.identity.nspid;
                }
                system_.erase(e.tgid);
            }
            ended_.push_back(p);
            break;
        }
        case MEMTOP_EV_NEED_UNWIND:
            if (unwind_) unwind_->on_need(e.tgid, e.file);
            break;
        case MEMTOP_EV_EXEC:
            // The old image's memory is gone with it; so are its stacks.
            forget_.push_back({e.tgid, e.epoch, e.mm_id});
            maps_.erase(e.tgid);
            symbolizer_.forget_process(static_cast<int>(e.tgid));  // the old image's JIT is gone too
            break;
    }
}

void Session::snapshot_maps(uint32_t pid, uint32_t epoch) {
    std::string err;
    auto maps = read_proc_maps(static_cast<int>(pid), &err);
    if (!maps) return;  // already gone: keep the last snapshot
    maps_[pid] = {epoch, std::move(*maps), Clock::now()};
    // JIT code is named by the process's perf map: read it (what was
    // appended to it) now, while the process and the file exist. A JIT may
    // remove it at exit, before the final report.
    symbolizer_.refresh_perf_map(static_cast<int>(pid));
}

void Session::attach_pids() {
    for (int pid : opt_.pids) {
        std::string done = attach_pid(pid);
        live_pids_.insert(pid);
        log(done);
    }
}

std::string Session::attach_pid(int pid) {
    std::string who = "pid " + std::to_string(pid);
    if (kill(pid, 0) != 0 && errno == ESRCH) throw MemtopError(kExitNoTarget, "trace " + who + ": no such process");
    std::string err;
    auto maps = read_proc_maps(pid, &err);
    if (!maps) throw MemtopError(kExitNoTarget, "trace " + who + ": " + err);
    auto files = finder_.files_of(pid, *maps);
    if (files.empty())
        throw MemtopError(kExitAttach, "trace " + who + " (" + comm_of(pid) +
                                           "): none of the files it maps defines malloc or operator new");
    // Tables before probes: the first stacks are whole too.
    if (unwind_) unwind_->load_process(pid);
    size_t probes = 0;
    for (const auto& f : files) probes += tracer_->attach_library(f.open_path, f.path, pid).links;
    return "tracing " + who + " (" + comm_of(pid) + "): " + std::to_string(files.size()) + " libraries, " +
           std::to_string(probes) + " probes";
}

void Session::start_command() {
    std::string path = resolve_command(opt_.command[0]);
    // The child runs memtop's image until exec, and memtop's libc and
    // libstdc++ are the ones a host program loads; a static CMD brings its
    // own allocator, which must then have symbols to probe.
    std::vector<LibraryFile> files;
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && finder_.defines_allocator(path, st.st_dev, st.st_ino)) {
        files.push_back({static_cast<uint64_t>(st.st_dev), st.st_ino, path, path});
    } else {
        bool is_static = false;
        try {
            is_static = !ElfImage::open(path)->dynamic();
        } catch (const MemtopError&) {
            // A script: its interpreter is dynamically linked.
        }
        if (is_static)
            throw MemtopError(kExitAttach, "trace " + path +
                                               ": it is statically linked and defines none of the allocator "
                                               "symbols memtop traces (stripped?); nothing to probe");
    }
    std::string err;
    auto maps = read_proc_maps(getpid(), &err);
    if (!maps) throw MemtopError(kExitFailure, "read memtop's own maps: " + err);
    for (auto& f : finder_.files_of(getpid(), *maps)) files.push_back(std::move(f));

    // Unwind tables for what CMD will map at start, before it runs: the
    // stacks of its first allocations (constructors included) are whole.
    // Libraries it opens later are tabled when a stack first meets them.
    if (unwind_)
        for (const auto& file : program_files(path)) {
            struct stat fst;
            if (stat(file.c_str(), &fst) == 0) unwind_->load_file({kernel_dev(fst.st_dev), fst.st_ino}, file, file);
        }

    cmd_ = std::make_unique<TracedCommand>(path, opt_.command);
    int pid = cmd_->pid();
    size_t probes = 0;
    std::set<std::pair<uint64_t, uint64_t>> done;
    for (const auto& f : files)
        if (done.insert({f.dev, f.ino}).second) probes += tracer_->attach_library(f.open_path, f.path, pid).links;
    log("tracing " + opt_.command[0] + " (pid " + std::to_string(pid) + "): " + std::to_string(done.size()) +
        " libraries, " + std::to_string(probes) + " probes");
    cmd_->release();
}

void Session::scan_host() {
    // --cgroup/--container: the processes in the cgroup now; probes go on
    // their files for every process (the kernel side filters by cgroup).
    std::vector<int> pids = cgroup_dir_.empty() ? list_pids() : cgroup_pids(cgroup_dir_);
    for (int pid : pids) {
        if (pid == getpid()) continue;
        if (!cgroup_dir_.empty() && unwind_ && scanned_pids_.insert(pid).second) unwind_->load_process(pid);
        std::string err;
        auto maps = read_proc_maps(pid, &err);
        if (!maps) continue;  // gone, or a kernel thread
        for (const auto& f : finder_.files_of(pid, *maps)) {
            if (!host_files_.insert({f.dev, f.ino}).second) continue;
            try {
                tracer_->attach_library(f.open_path, f.path, -1);
                if (opt_.verbose) log("attached to " + f.path + " (via pid " + std::to_string(pid) + ")");
            } catch (const MemtopError& e) {
                log(std::string("warning: ") + e.what());
            }
        }
    }
}

bool Session::targets_gone() {
    if (opt_.pids.empty()) return false;
    for (auto it = live_pids_.begin(); it != live_pids_.end();) {
        if (!alive(*it)) {
            log("pid " + std::to_string(*it) + " exited");
            it = live_pids_.erase(it);
        } else {
            ++it;
        }
    }
    return live_pids_.empty();
}

Report Session::build_report(bool final) {
    Report r;
    r.time = std::chrono::system_clock::now();
    r.final = final;
    r.processes = tracer_->read_processes();
    std::set<std::pair<uint32_t, uint32_t>> shown;
    for (const auto& p : r.processes) shown.insert({p.pid, p.epoch});
    for (const auto& p : ended_) {
        if (!shown.insert({p.pid, p.epoch}).second) continue;
        r.processes.push_back(p);
    }
    if (system_view_) {
        std::map<uint32_t, ProcessStats> heap;
        for (auto& p : r.processes)
            if (!p.exited) heap[p.pid] = p;
        std::erase_if(r.processes, [](const ProcessStats& p) { return !p.exited; });
        add_system_view(r, heap);
    } else {
        // The traced processes' resident memory, kept by the kernel for
        // every process (kmem:rss_stat).
        auto rss = tracer_->read_rss();
        for (auto& p : r.processes) {
            if (p.exited) continue;
            if (auto it = rss.find(p.pid); it != rss.end()) p.rss = it->second;
        }
    }
    add_mapped(r);
    order_processes(r.processes);

    std::vector<StackStats> candidates;
    for (const auto& s : tracer_->read_stacks())
        if (shown.count({s.pid, s.epoch})) candidates.push_back(s);
    r.unwind = unwind_summary(candidates);
    if (!opt_.lines.empty()) {
        // Every stack, not only the top ones: a line's total is the sum.
        LineReport lr;
        lr.file = opt_.lines;
        for (const auto& s : candidates) {
            if (!s.stack_id) continue;
            ReportStack rs = report_stack(s, AddressKind::Return);
            add_stack_lines(lr, s, rs.frames);
        }
        r.lines = std::move(lr);
    }
    for (const auto& s : top_stacks(std::move(candidates), opt_.top, focus_))
        r.stacks.push_back(report_stack(s, AddressKind::Return));
    // Which code grew resident memory, for the processes in this report.
    std::set<uint32_t> shown_pids;
    for (const auto& p : r.processes) shown_pids.insert(p.pid);
    std::vector<StackStats> growth;
    for (auto& g : tracer_->read_growth())
        if (shown_pids.count(g.pid)) growth.push_back(g);
    for (const auto& g : top_stacks(std::move(growth), opt_.top))
        r.growth_stacks.push_back(report_stack(g, AddressKind::Exact));
    std::vector<StackStats> mapped;
    for (auto& m : tracer_->read_mappings())
        if (shown_pids.count(m.pid)) mapped.push_back(m);
    for (const auto& m : top_stacks(std::move(mapped), opt_.top))
        r.mappings.push_back(report_stack(m, AddressKind::Exact));
    r.lost = tracer_->read_lost();
    r.self = self_stats();
    return r;
}

// Anonymous memory mapped per live process: every process in the system
// view, the traced ones otherwise (the kernel records only theirs).
void Session::add_mapped(Report& r) {
    if (!tracer_->mappings()) return;
    auto mapped = tracer_->read_mapped();
    for (auto& p : r.processes) {
        if (p.exited || (!system_view_ && !p.heap_traced)) continue;
        p.mapped_known = true;
        if (auto it = mapped.find(p.pid); it != mapped.end()) {
            p.mapped_bytes = it->second.bytes;
            p.mapped_peak_bytes = it->second.peak;
        }
    }
}

ReportStack Session::report_stack(const StackStats& s, AddressKind first) {
    ReportStack rs;
    rs.stats = s;
    auto stack = s.stack_id ? tracer_->read_stack(s.stack_id) : std::nullopt;
    if (stack) {
        std::vector<uint64_t> ips(stack->ips, stack->ips + std::min<uint32_t>(stack->nr, MEMTOP_MAX_FRAMES));
        rs.truncated = stack->flags & MEMTOP_STACK_TRUNCATED;
        rs.complete = stack->flags & MEMTOP_STACK_COMPLETE;
        auto m = maps_.find(s.pid);
        // Growth stacks are per pid (epoch 0): any snapshot of the pid will do.
        bool current = m != maps_.end() && (m->second.epoch == s.epoch || s.epoch == 0);
        if (!current && alive(static_cast<int>(s.pid))) {
            snapshot_maps(s.pid, s.epoch);
            m = maps_.find(s.pid);
            current = m != maps_.end();
        }
        if (current) {
            rs.frames = symbolizer_.resolve_stack(static_cast<int>(s.pid), m->second.maps, ips, first);
        } else {
            for (auto ip : ips) {
                Frame f;
                f.address = ip;
                rs.frames.push_back(f);
            }
        }
    }
    return rs;
}

UnwindSummary Session::unwind_summary(const std::vector<StackStats>& stacks) {
    UnwindSummary u;
    u.tables = unwind_ != nullptr;
    if (unwind_) {
        const auto& st = unwind_->stats();
        u.table_files = st.files;
        u.table_failed = st.failed;
        u.table_rows = st.rows;
        u.table_capacity = st.capacity;
        u.table_bytes = st.bytes();
    }
    if (shapes_.size() > 4 * size_t(opt_.sizes.stacks)) shapes_.clear();  // stacks purged since: re-read
    std::set<std::pair<uint32_t, uint64_t>> seen;
    for (const auto& s : stacks) {
        if (!s.stack_id || !seen.insert({s.pid, s.stack_id}).second) continue;
        auto it = shapes_.find(s.stack_id);
        if (it == shapes_.end()) {
            auto stack = tracer_->read_stack(s.stack_id);
            if (!stack) continue;
            uint32_t n = std::min<uint32_t>(stack->nr, MEMTOP_MAX_FRAMES);
            it = shapes_
                     .emplace(s.stack_id,
                              StackShape{(stack->flags & MEMTOP_STACK_COMPLETE) != 0, n ? stack->ips[n - 1] : 0})
                     .first;
        }
        u.stacks++;
        if (it->second.complete) continue;
        u.incomplete++;
        std::string module = "?";
        auto m = maps_.find(s.pid);
        if (m != maps_.end())
            if (const Mapping* mp = find_mapping(m->second.maps, it->second.last_ip))
                module = mp->path.empty() ? "[anonymous]" : mp->path;
        u.incomplete_by_module[module]++;
    }
    return u;
}

void Session::print(Report r) {
    hide_untraced(r);
    view_->show(r);
    // What was reported of ended processes is not reported again.
    for (const auto& p : ended_) {
        forget_.push_back({p.pid, p.epoch, p.mm_id});
        auto m = maps_.find(p.pid);
        if (m != maps_.end() && m->second.epoch == p.epoch) maps_.erase(m);
        symbolizer_.forget_process(static_cast<int>(p.pid));
    }
    ended_.clear();
    tracer_->forget(forget_);
    forget_.clear();
}

// Every process's resident memory. The kernel keeps it current through
// kmem:rss_stat (bpf/memtop.bpf.c); /proc is read once per process, for the
// numbers of a process whose counters have not changed since memtop started,
// and for its name and identity.
void Session::add_system_view(Report& r, const std::map<uint32_t, ProcessStats>& heap) {
    auto now = Clock::now();
    double dt = last_report_ == Clock::time_point{} ? 0 : std::chrono::duration<double>(now - last_report_).count();
    last_report_ = now;
    auto kernel = tracer_->read_rss();
    std::set<uint32_t> alive;
    for (int pid : list_pids()) alive.insert(static_cast<uint32_t>(pid));
    for (uint32_t pid : alive) {
        auto k = kernel.find(pid);
        auto it = system_.find(pid);
        if (it == system_.end() && k == kernel.end()) {
            std::string err;
            auto st = read_proc_status(static_cast<int>(pid), &err);
            if (!st || (st->vm_rss == 0 && st->rss_anon == 0 && st->rss_file == 0)) continue;  // kernel thread
            RssStats seed;
            seed.anon = st->rss_anon;
            seed.file = st->rss_file;
            seed.shmem = st->rss_shmem;
            seed.swap = st->vm_swap;
            seed.peak = seed.resident();
            it = system_.emplace(pid, SystemProcess{}).first;
            it->second.seed = seed;
        } else if (it == system_.end()) {
            it = system_.emplace(pid, SystemProcess{}).first;
        }
        SystemProcess& sp = it->second;
        RssStats cur = k != kernel.end() ? k->second : *sp.seed;
        if (sp.seed) cur.peak = std::max(cur.peak, sp.seed->peak);
        sp.last = cur;
        if (!sp.have_identity) {
            sp.identity = read_identity(static_cast<int>(pid));
            sp.have_identity = true;
        }

        ProcessStats p;
        auto h = heap.find(pid);
        if (h != heap.end()) {
            p = h->second;
        } else {
            p.pid = pid;
            p.comm = comm_of(static_cast<int>(pid));
            p.heap_traced = false;
        }
        p.rss = cur;
        p.growth_bytes = sp.prev_resident < 0 ? 0 : cur.resident() - sp.prev_resident;
        p.growth_rate = dt > 0 ? p.growth_bytes / dt : 0;
        sp.grow_streak = p.growth_bytes > 0 ? sp.grow_streak + 1 : 0;
        p.growing = sp.grow_streak >= kGrowingIntervals;
        sp.prev_resident = cur.resident();
        p.has_identity = true;
        p.cgroup = sp.identity.cgroup;
        p.container = sp.identity.container;
        p.nspid = sp.identity.nspid;
        r.processes.push_back(std::move(p));
    }
    std::erase_if(system_, [&](const auto& e) { return !alive.count(e.first); });
}

SelfStats Session::self_stats() {
    SelfStats s;
    std::string err;
    if (auto st = read_proc_status(getpid(), &err)) s.rss_bytes = st->vm_rss;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s.cpu_seconds = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    auto now = Clock::now();
    if (self_cpu_at_ != Clock::time_point{}) {
        double wall = std::chrono::duration<double>(now - self_cpu_at_).count();
        if (wall > 0) s.cpu_percent = 100.0 * (s.cpu_seconds - self_cpu_) / wall;
    }
    self_cpu_ = s.cpu_seconds;
    self_cpu_at_ = now;
    s.probes = tracer_->probe_count();
    s.kernel_bytes = tracer_->kernel_bytes();
    return s;
}

int Session::run() {
    bool by_cgroup = !opt_.cgroup.empty() || !opt_.container.empty();
    system_view_ = opt_.pids.empty() && opt_.command.empty() && !opt_.heap_all && !by_cgroup;
    // Resolved before anything is loaded: a wrong name is one line and no BPF.
    if (!opt_.cgroup.empty()) cgroup_dir_ = resolve_cgroup_dir(opt_.cgroup);
    if (!opt_.container.empty()) cgroup_dir_ = container_cgroup_dir(opt_.container);
    Fd cgroup_fd;
    if (by_cgroup) {
        cgroup_fd.fd = open(cgroup_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_fd.fd < 0) throw MemtopError(kExitNoTarget, "trace cgroup " + cgroup_dir_ + ": " + strerror(errno));
    }

    // Signals arrive through a signalfd, in the same loop as the events.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    Fd sfd{signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)};

    TracerConfig tc;
    tc.sizes = opt_.sizes;
    // Printed reports of the system view never trace a heap, so the
    // allocation table (preallocated, about 45 MiB at its default size)
    // shrinks to nothing there unless asked for. The screen keeps it: its
    // `t` traces a process.
    if (system_view_ && !view_->interactive() && opt_.sizes.allocs == MapSizes{}.allocs) tc.sizes.allocs = 1;
    tc.verbose = opt_.verbose;
    tc.uprobe_multi = opt_.uprobe_multi;
    tc.force_compat = opt_.compat_bpf;
    tc.dwarf = !opt_.frame_pointers_only;
    tc.fault_sample_bytes = opt_.fault_sample;
    tc.cgroup_fd = cgroup_fd.fd;
    tc.traced_only = !system_view_;
    tc.mappings = !opt_.no_mappings;
    tracer_ = std::make_unique<Tracer>(tc, [this](const memtop_event& e) { on_event(e); });

    if (tracer_->dwarf_unwind())
        unwind_ = std::make_unique<UnwindTables>(tracer_->unwind_rows_fd(), tracer_->unwind_files_fd(),
                                                 opt_.sizes.unwind_rows, opt_.verbose);
    if (opt_.verbose)
        log(tracer_->uses_uprobe_multi() ? "attaching with uprobe_multi links"
                                         : "attaching one perf-event uprobe per probe");
    if (system_view_ && unwind_) {
        // Nearly every process runs through the host's libc and friends:
        // their tables now, so the first growth and mapping stacks through
        // them are whole (others are built when a stack first meets them).
        std::string err;
        if (auto self = read_proc_maps(getpid(), &err))
            for (const auto& m : *self) {
                if (m.perms.size() < 3 || m.perms[2] != 'x' || !m.ino || m.path.find(".so") == std::string::npos)
                    continue;
                unwind_->load_file({kernel_dev(m.dev), m.ino}, m.path, m.path);
            }
    }
    if (system_view_) {
        log("watching every process's resident memory (kernel tracepoints only: no process takes a trap)");
    } else if (!opt_.command.empty()) {
        start_command();
    } else if (!opt_.pids.empty()) {
        attach_pids();
    } else if (by_cgroup) {
        scan_host();
        log("tracing cgroup " + cgroup_dir_ + ": " + std::to_string(tracer_->libraries().size()) + " libraries, " +
            std::to_string(tracer_->probe_count()) +
            " probes; processes that share these files take a trap "
            "per allocation too, and are not reported");
    } else {
        log("--heap-all: every malloc and free in every process on this host now takes a uprobe trap, "
            "until memtop exits");
        scan_host();
        log("tracing all processes: " + std::to_string(tracer_->libraries().size()) + " libraries, " +
            std::to_string(tracer_->probe_count()) + " probes");
    }

    // Said once attaching succeeded, so a failure stays a single line.
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

    view_->start(*this);
    // Reports, ring-buffer events, signals and the view's input (a
    // terminal's keys) are all handled here, in this one thread.
    Fd ep{epoll_create1(EPOLL_CLOEXEC)};
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = tracer_->epoll_fd();
    epoll_ctl(ep.fd, EPOLL_CTL_ADD, tracer_->epoll_fd(), &ev);
    ev.data.fd = sfd.fd;
    epoll_ctl(ep.fd, EPOLL_CTL_ADD, sfd.fd, &ev);
    std::vector<int> view_fds = view_->fds();
    for (int fd : view_fds) {
        ev.data.fd = fd;
        epoll_ctl(ep.fd, EPOLL_CTL_ADD, fd, &ev);
    }

    auto start = Clock::now();
    // The first report's CPU share covers the loop, not loading and attaching.
    self_stats();
    self_cpu_at_ = start;
    auto seconds = [](double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    };
    auto interval = seconds(interval_);
    // Someone watching a screen sees the first numbers within a second.
    auto next_report = start + (view_->interactive() ? std::min(interval, seconds(1)) : interval);
    size_t reports = 0;
    auto next_scan = start + std::chrono::seconds(1);
    bool stop = false;

    auto on_exit_stop = [this] {
        // The child is about to exit with its memory still mapped.
        for (const auto& p : tracer_->read_processes())
            if (static_cast<int>(p.pid) == cmd_->pid()) snapshot_maps(p.pid, p.epoch);
    };

    while (!stop) {
        auto now = Clock::now();
        auto wake = next_report;
        if (opt_.heap_all || by_cgroup) wake = std::min(wake, next_scan);
        if (opt_.duration)
            wake = std::min(wake, start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(*opt_.duration)));
        int timeout_ms = static_cast<int>(
            std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1));
        if (!opt_.pids.empty()) timeout_ms = std::min(timeout_ms, 200);  // -p targets are polled for exit

        epoll_event events[8];
        int n = epoll_wait(ep.fd, events, 8, timeout_ms);
        for (int i = 0; i < n; i++) {
            if (events[i].data.fd == tracer_->epoll_fd()) {
                tracer_->consume_events();
                continue;
            }
            if (std::find(view_fds.begin(), view_fds.end(), events[i].data.fd) != view_fds.end()) {
                view_->on_ready(events[i].data.fd, events[i].events);
                continue;
            }
            signalfd_siginfo si;
            while (read(sfd.fd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD) {
                    if (cmd_) cmd_->on_child_state(on_exit_stop);
                } else if (cmd_) {
                    // A terminal's Ctrl-C reaches CMD itself; a signal sent
                    // to memtop alone is passed on. Either way memtop waits
                    // for CMD, like `time` does.
                    if (si.ssi_code != SI_KERNEL) cmd_->signal(static_cast<int>(si.ssi_signo));
                } else {
                    stop = true;
                }
            }
        }
        now = Clock::now();
        if (quit_) stop = true;
        if (interval_changed_) {
            interval = seconds(interval_);
            next_report = now + interval;
            interval_changed_ = false;
        }
        if (cmd_ && cmd_->exited()) stop = true;
        if (targets_gone()) stop = true;
        if (opt_.duration && now - start >= std::chrono::duration<double>(*opt_.duration)) stop = true;
        if (stop) break;
        if ((opt_.heap_all || by_cgroup) && now >= next_scan) {
            scan_host();  // processes started since, with libraries not yet seen
            next_scan = now + std::chrono::seconds(1);
        }
        if (now >= next_report) {
            if (opt_.iterations && ++reports >= *opt_.iterations) break;  // the last one is the final report
            tracer_->consume_events();
            // CMD's exit event can come before the SIGCHLD that ends the
            // loop. Its final numbers belong in the final report, which
            // follows the reap: look again shortly instead.
            if (cmd_ && std::any_of(ended_.begin(), ended_.end(),
                                    [&](const ProcessStats& p) { return static_cast<int>(p.pid) == cmd_->pid(); })) {
                next_report = now + std::chrono::milliseconds(100);
                continue;
            }
            print(build_report(false));
            next_report += interval;
            if (next_report < now) next_report = now + interval;
        }
    }

    tracer_->consume_events();
    print(build_report(true));
    if (cmd_) {
        if (!cmd_->exited()) {
            log("stopped before " + opt_.command[0] + " exited; it keeps running (pid " + std::to_string(cmd_->pid()) +
                ")");
            return kExitOk;
        }
        return cmd_->exit_status();
    }
    return kExitOk;
}

}  // namespace memtop
