// The BPF side as user space sees it: loads bpf/memtop.bpf.c (or its compat
// build), attaches its tracepoints and, per file, its allocator probes,
// hands ring-buffer events to a sink, copies the maps out as snapshots, and
// forgets ended processes. The only part of memtop that knows bpf/memtop.h
// (with the rest of kernel/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "attach/file_plan.h"
#include "attach/placement.h"
#include "kernel/bpf_handles.h"
#include "kernel/config.h"
#include "kernel/events.h"
#include "kernel/map_reader.h"
#include "kernel/maps.h"
#include "kernel/programs.h"
#include "kernel/pymalloc_probes.h"
#include "kernel/unwind/unwind_tables.h"
#include "model/snapshot.h"
#include "procinfo/proc_maps.h"
#include "python/python_frames.h"
#include "util/unique_fd.h"

struct bpf_program;
struct bpf_object;
struct bpf_object_open_opts;

namespace memtop {

struct AttachedLibrary {
    std::string path;  // as shown to users
    int pid = -1;      // -1: every process mapping the file
    std::vector<ProbeSite> sites;
    size_t links = 0;  // probes attached (entry and return)
    // Allocator functions the file defines that memtop leaves unprobed
    // because it cannot count them exactly ("symbol: why").
    std::vector<std::string> not_traced;
};

// How many BPF objects to load at once, on as many threads: one per core
// not busy now, up to 4 (the verifier works one program after another
// within an object).
size_t load_parts();

class Tracer {
public:
    // Opens, sizes and loads the BPF object (the full build, else without
    // its unwinder, else the compat build), attaches the lifecycle,
    // resident-memory, page-fault and syscall tracepoints. Events go to
    // `sink` from consume_events(). Throws MemtopError (permission, kernel,
    // failure) naming what was attempted.
    Tracer(const TracerConfig& config, EventSink& sink);
    ~Tracer();
    Tracer(const Tracer&) = delete;
    Tracer& operator=(const Tracer&) = delete;

    // Attaches every allocator probe planned for the ELF file `open_path`
    // (a path the kernel resolves to the file's inode; /proc/PID/root/...
    // for a container's file) with a pid filter (-1: all processes).
    // Throws MemtopError(kExitAttach) naming the file, symbol and errno.
    // A file the placement worker (memtop-cfi) crashes or hangs on gets no
    // probes, and stderr says so: the result has no links, and is not one
    // of libraries(). (Valid until the next call.)
    const AttachedLibrary& attach_library(const std::string& open_path, const std::string& shown_path, int pid);
    // What memtop-cfi read of the file at `open_path` (`shown` in
    // messages): its headers and the symbols memtop asks of every file
    // (FileSymbols, attach/file_plan.h), once per file identity. Null when
    // it is not an ELF file memtop can read, or the worker crashed or hung
    // on it (then *failed is set): that is said once on stderr, and the
    // file, as one placement failed on, is not asked about again.
    const FileSymbols* file_symbols(const std::string& open_path, const std::string& shown, bool* failed = nullptr);
    const std::vector<AttachedLibrary>& libraries() const { return libraries_; }
    size_t probe_count() const;     // probes attached, entry and return
    uint64_t kernel_bytes() const;  // kernel memory of memtop's BPF maps, as the kernel accounts it

    // What loaded.
    bool uses_uprobe_multi() const { return use_multi_; }
    bool uses_uprobe_session() const { return use_session_; }
    // The 5.10 build: per-thread state in a hash, peak without CAS.
    bool compat() const { return compat_; }
    // Stacks are unwound with tables (bpf/unwind.h) rather than frame
    // pointers alone: the full build on kernels with bpf_loop and bpf_find_vma.
    bool dwarf_unwind() const { return dwarf_unwind_; }
    // Why the full build loaded without its table unwinder; empty if it did not.
    const std::string& unwinder_error() const { return unwinder_error_; }
    // Page-fault growth stacks are sampled (the full build, --fault-sample > 0).
    bool growth_stacks() const { return fault_threshold_ != 0; }
    // Anonymous mappings per stack are recorded (the full build on 5.15+,
    // with the syscall tracepoints); otherwise why not.
    bool mappings() const { return mappings_; }
    const std::string& mappings_unavailable() const { return mappings_why_not_; }
    bool exact_rss() const { return rss_iter_ != nullptr; }
    const KernelMaps& maps() const { return maps_; }
    // The tables the BPF unwinder reads (null with frame pointers only):
    // filled ahead for files memtop knows will run, and on demand when a
    // stack walk meets a file without one.
    UnwindTables* unwind_tables() { return unwind_.get(); }

    int epoll_fd() const;   // readable when events are waiting
    void consume_events();  // hands each waiting event to the sink

    // The maps now. Where the kernel keeps resident-memory counters per CPU
    // (6.2+), the per-CPU parts are summed first (rss_exact), as /proc does.
    // with_ages: also every live block's age (a walk of the whole allocation
    // table: --min-age only).
    KernelSnapshot snapshot(bool with_ages = false);
    std::vector<ProcessStats> heap_processes() const { return reader_->heap_processes(); }
    // memtop-cfi, the unwind-table worker (0: none runs).
    pid_t cfi_worker_pid() const { return cfi_worker_.pid(); }
    // A stored stack's frames (read from the kernel once), null if none.
    const RawStack* stack(uint64_t id) { return reader_->stack(id); }
    // The resident-memory counters as kmem:rss_stat last left them (not
    // summed per CPU: between reports), and mapped bytes, by pid.
    std::map<uint32_t, RssStats> rss_now() const { return reader_->read_rss(); }
    std::map<uint32_t, MappedStats> mapped_now() const { return reader_->read_mapped(); }

    // Process `pid` (its maps): if it runs CPython, the kernel is told
    // where its Python frames are (bpf/python_frames.h). Returns what to
    // tell the user: "" for no CPython; else that Python frames are on, or
    // why not (a version memtop has no layout for, the compat build).
    // --python-objects --sample: in_process_refused points to "" when the
    // preloaded sampler samples its objects in-process (pymalloc's sites are
    // then not probed), else to why not; *note then says which is used.
    std::string watch_python(int pid, const std::vector<Mapping>& maps, const std::string* in_process_refused = nullptr,
                             std::string* note = nullptr);
    // The kernel has pid's Python layout: it runs a CPython memtop
    // described, and has not exited or exec'd since (bpf/lifecycle.h).
    bool python_watched(int pid) const;
    // A CPython memtop runs under ptrace (`-- CMD`, -f's children), watched
    // already: at Py_FinalizeEx's entry it stops for memtop, while its code
    // objects still exist (bpf/python_frames.h: py_finalize). "" when armed
    // (or nothing to arm: no CPython, the compat build); else why not.
    std::string hold_python_at_finalize(int pid);
    // pid stopped for the signal py_finalize sent (then disarmed): its
    // Python stacks are to be named now, and the signal discarded.
    bool python_hold_fired(int pid);
    // How many processes that is (the py_procs entries).
    size_t python_processes() const;
    // The Python frames of the heap stacks, named (null in the compat build).
    PythonFrames* python() { return python_.get(); }

    // A target process (-p, -- CMD, -f's children): its growth and mappings
    // are recorded from now on, before its first heap allocation (on =
    // false: not, for a pid that exited meanwhile; the kernel forgets it at
    // the process's exit).
    void watch_target(int pid, bool on = true);

    // Deletes what the kernel holds for ended process instances.
    void forget(const std::vector<EndedInstance>& instances);

    // For memtop's last moments, when nothing more is to be read: stops the
    // syscall tracepoints now and leaves their release to a child that
    // outlives memtop (late_detach.h), so that memtop's exit does not wait
    // ~0.2 s for the kernel to release them. Without a child, ~Tracer
    // releases them as before.
    void detach_after_exit();

private:
    template <typename Skel>
    int load_variant(Skel* (*open)(const bpf_object_open_opts*), int (*load)(Skel*), void (*destroy)(Skel*),
                     const TracerConfig& config);
    void attach_tracepoints();
    bool needed(ProgramNeeds needs) const;
    // Loads the programs of the mimalloc object (bpf/mimalloc.bpf.c) among
    // wanted (by kPrograms index) not loaded yet, on the maps of the loaded
    // object, at the attach that needs them: "" or why not.
    const std::string& load_mimalloc(const std::vector<bool>& wanted);
    void sum_rss_exactly() const;

    // Events for the session, but unwind-table requests are the tables' own.
    class Events : public EventSink {
    public:
        Events(EventSink& out, Tracer& t) : out_(out), t_(t) {}
        void process_ended(const ProcessStats& p) override { out_.process_ended(p); }
        void process_exec(const EndedInstance& old) override { out_.process_exec(old); }
        void stack_stored(uint32_t pid, uint32_t epoch, uint64_t stack_id) override {
            out_.stack_stored(pid, epoch, stack_id);
        }
        void python_stack_stored(uint32_t pid, uint64_t stack_id) override {
            if (t_.python_) t_.python_->stack_stored(pid, stack_id);
        }
        void python_hooks_lost(uint32_t pid) override {
            if (t_.python_) t_.python_->hooks_lost(pid);
        }
        // Built after the events waiting with it (consume_events): a
        // table takes milliseconds, in which a short script's imported
        // modules' code objects can be freed before their stacks' events
        // are read.
        void unwind_table_needed(uint32_t pid, const FileKey& file) override {
            if (t_.unwind_) t_.unwind_needs_.emplace_back(pid, file);
        }

    private:
        EventSink& out_;
        Tracer& t_;
    };
    Events events_;
    MapSizes sizes_;
    // The loaded skeleton (either build), destroyed after every link.
    struct SkeletonOwner {
        std::function<void()> destroy;
        ~SkeletonOwner() {
            if (destroy) destroy();
        }
    };
    ::bpf_object* obj_ = nullptr;
    bpf_program* programs_[kProgramCount] = {};  // by kPrograms index; null: not in this build or not loaded
    KernelMaps maps_;
    bool compat_ = false;
    bool dwarf_unwind_ = false;
    uint32_t fault_threshold_ = 0;
    double growth_weight_ = 0;
    bool mappings_ = false;
    bool exact_rss_possible_ = false;
    bool mi_heaps_ = false;         // mimalloc's heap API programs load (ProgramNeeds::MiHeaps)
    bool mimalloc_probed_ = false;  // mi_heaps_ known
    std::string mimalloc_error_;    // why the mimalloc object did not load; empty: it did, or not tried
    std::string unwinder_error_;
    std::string mappings_why_not_;
    bool use_multi_ = false;
    bool use_session_ = false;    // the allocation entry programs are uprobe sessions
    bool entry_cookies_ = false;  // alloc_entry serves the plain allocation entries (ProgramNeeds::EntryCookies)
    bool entry_cookies_refused_ = false;  // the verifier refused alloc_entry: the six programs

    // memtop-cfi: parses the files of traced processes unprivileged, for the
    // unwind tables and for probe placement (cfi_worker.h). Before unwind_,
    // which uses it.
    CfiWorker cfi_worker_;
    // Owned handles, released in reverse order before the skeleton.
    std::unique_ptr<SkeletonOwner> skeleton_;
    std::vector<std::unique_ptr<SkeletonOwner>> mimalloc_;  // its programs, on skeleton_'s maps
    std::vector<LinkPtr> links_;
    std::vector<LinkPtr> syscall_links_;  // the syscall tracepoints' (detach_after_exit)
    std::vector<UniqueFd> multi_links_;
    LinkPtr rss_iter_;
    RingBufferPtr ring_;
    std::unique_ptr<MapReader> reader_;
    std::unique_ptr<UnwindTables> unwind_;
    std::unique_ptr<PythonFrames> python_;
    // Python's object-allocator domain (bpf/pymalloc.h): the probes of each
    // CPython executable by file identity, planned once; the last attached
    // plan's figures for the report.
    std::string attach_pymalloc(int pid, const std::string& path);
    std::map<std::pair<uint64_t, uint64_t>, PymallocProbes> pymalloc_plans_;
    size_t py_sites_ = 0, py_sites_skipped_ = 0;
    bool python_objects_ = false;            // --python-objects: the Python domain's programs load and attach
    uint64_t python_sample_bytes_ = 0;       // its objects sampled at pymalloc's sites every BYTES (0: counted)
    uint32_t py_procs_gen_ = 0;              // the last value written to the py_procs_gen map (watch_python)
    std::map<int, std::string> py_modules_;  // watched pids' CPython file, as their maps name it
    std::set<std::pair<uint64_t, uint64_t>> py_finalize_probed_;  // files with py_finalize attached
    std::deque<std::pair<uint32_t, FileKey>> unwind_needs_;       // requests read, tables not built yet
    std::vector<AttachedLibrary> libraries_;
    AttachedLibrary not_placed_;  // attach_library's result for a file the placement worker failed on
    // Files (dev, ino) the placement worker failed on: not asked again (a
    // -- CMD's every fork and exec would otherwise cost a crash, or the
    // time limit, and say it again).
    std::set<std::pair<uint64_t, uint64_t>> placement_failed_;
    // file_symbols()'s answers (nullopt: not ELF, unreadable).
    std::map<std::pair<uint64_t, uint64_t>, std::optional<FileSymbols>> file_symbols_;
};

}  // namespace memtop
