// The BPF side as user space sees it: loads memtop.bpf.c, attaches allocator
// probes to libraries, copies the maps out, and forgets dead processes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attach/placement.h"
#include "memtop.h"
#include "model/model.h"

struct ring_buffer;
struct bpf_link;
struct bpf_program;
struct bpf_map;
struct bpf_object;

namespace memtop {

struct MapSizes {
    uint32_t allocs = 1u << 19;       // live allocations tracked at once
    uint32_t stacks = 1u << 14;       // distinct stacks
    uint32_t aggs = 1u << 16;         // (process, stack) pairs
    uint32_t procs = 1u << 14;        // processes (heap-traced, and for resident memory)
    uint32_t unwind_rows = 1u << 21;  // unwind-table rows, all files together (8 bytes each)
    uint32_t mappings = 1u << 17;     // anonymous mappings recorded at once (mmap/brk)
};

// How the BPF side is loaded.
struct TracerConfig {
    MapSizes sizes;
    bool verbose = false;
    bool uprobe_multi = true;                  // uprobe_multi links where the kernel has them
    bool force_compat = false;                 // the 5.10 build even where the full one loads (tests of the fallback)
    bool dwarf = true;                         // unwind with tables where the kernel can (else frame pointers)
    uint64_t fault_sample_bytes = 512 * 1024;  // page-fault growth stacks: mean bytes between samples; 0 off
    int cgroup_fd = -1;                        // heap tracing only for tasks in this cgroup (v2 directory fd); -1 all
    bool traced_only = false;  // growth and mapping stacks only of heap-traced processes (a target was given)
    bool mappings = true;      // anonymous mmap/munmap/mremap/brk per stack (syscall tracepoints)
};

// Probability that a Poisson process over bytes with mean interval `mean`
// samples a 4096-byte page: 1 - exp(-4096/mean). A sampled page stands for
// 4096/p bytes.
double page_sample_probability(uint64_t mean);

struct AttachedLibrary {
    std::string path;  // as shown to users
    int pid = -1;      // -1: every process mapping the file
    std::vector<ProbeSite> sites;
    size_t links = 0;  // probes attached (entry and return)
};

// The programs and maps of whichever BPF build loaded (memtop.skel.h, or
// memtop_compat.skel.h on kernels before 5.12).
struct TracerPrograms {
    bpf_program *malloc_entry, *new_entry, *calloc_entry, *realloc_entry, *reallocarray_entry, *memalign_entry,
        *posix_memalign_entry, *free_entry, *alloc_return, *process_exec, *process_exit, *rss_stat;
    bpf_program* page_fault_user;                                                // null in the compat build
    bpf_program *mmap_exit, *munmap_enter, *mremap_exit, *brk_enter, *brk_exit;  // likewise
    bpf_program* rss_exact;  // null where counters are not per-CPU or cannot be summed
};
struct TracerMaps {
    bpf_map *allocs, *stacks, *aggs, *procs, *counters, *events, *rss;
    bpf_map *unwind_rows, *unwind_files, *growth;             // null in the compat build
    bpf_map *mapped, *mapped_ends, *mapped_aggs, *map_procs;  // likewise
};

// Anonymous memory one process mapped while memtop watched (bpf/mappings.h).
struct MappedStats {
    uint32_t mm_id = 0;  // its address space
    int64_t bytes = 0, peak = 0;
    uint64_t maps_total = 0;
};

// An ended process instance: its heap (epoch) and its address space (mm_id).
struct EndedInstance {
    uint32_t pid = 0, epoch = 0, mm_id = 0;
};

// Resident memory as the kernel side lays it out (enum memtop_rss_member).
RssStats rss_from_kernel(const __s64 bytes[4], __s64 peak);

class Tracer {
public:
    using EventHandler = std::function<void(const memtop_event&)>;

    // Opens, sizes and loads the BPF object, attaches the lifecycle and
    // page-fault tracepoints. Throws MemtopError (permission, kernel, failure).
    Tracer(const TracerConfig& config, EventHandler on_event);
    ~Tracer();
    Tracer(const Tracer&) = delete;
    Tracer& operator=(const Tracer&) = delete;

    // Attaches every allocator probe planned for the ELF file `open_path`
    // (a path the kernel resolves to the file's inode; /proc/PID/root/...
    // for a container's file) with a pid filter (-1: all processes).
    // Throws MemtopError(kExitAttach) naming the file, symbol and errno.
    const AttachedLibrary& attach_library(const std::string& open_path, const std::string& shown_path, int pid);
    const std::vector<AttachedLibrary>& libraries() const { return libraries_; }
    size_t probe_count() const;     // probes attached, entry and return
    uint64_t kernel_bytes() const;  // kernel memory of memtop's BPF maps, as the kernel accounts it
    bool uses_uprobe_multi() const { return use_multi_; }
    // Loaded the 5.10 build: per-thread state in a hash, peak without CAS.
    bool compat() const { return compat_; }
    // Stacks are unwound with tables (bpf/unwind.h) rather than frame
    // pointers alone: the full build on kernels with bpf_loop and bpf_find_vma.
    bool dwarf_unwind() const { return dwarf_unwind_; }
    // Why the full build loaded without its table unwinder; empty if it did not.
    const std::string& unwinder_error() const { return unwinder_error_; }
    // Page-fault growth stacks are sampled (the full build, --fault-sample > 0).
    bool growth_stacks() const { return maps_.growth != nullptr && fault_threshold_ != 0; }
    // Bytes one growth sample stands for (4096 / p).
    double growth_sample_weight() const { return growth_weight_; }
    std::vector<StackStats> read_growth() const;  // bytes: estimated; allocs: samples
    // Anonymous mappings per stack are recorded (the full build on 5.15+,
    // with the syscall tracepoints); otherwise why not.
    bool mappings() const { return mappings_; }
    const std::string& mappings_unavailable() const { return mappings_why_not_; }
    std::vector<StackStats> read_mappings() const;        // bytes still mapped; allocs: mappings; epoch: mm_id
    std::map<uint32_t, MappedStats> read_mapped() const;  // by tgid
    int unwind_rows_fd() const;
    int unwind_files_fd() const;

    int epoll_fd() const;   // readable when events are waiting
    void consume_events();  // runs the handler for each waiting event

    std::vector<ProcessStats> read_processes() const;
    // By tgid. Where the kernel keeps the counters per CPU (6.2+), the
    // per-CPU parts are summed first (rss_exact), as /proc does.
    std::map<uint32_t, RssStats> read_rss() const;
    bool exact_rss() const { return rss_iter_ != nullptr; }
    std::vector<StackStats> read_stacks() const;
    std::optional<memtop_stack> read_stack(uint64_t stack_id) const;
    LostCounters read_lost() const;

    // Deletes what the kernel holds for ended process instances: their
    // aggregates, live-allocation records, and stacks no one references.
    void forget(const std::vector<EndedInstance>& instances);

private:
    void release();
    template <typename Skel>
    int load_variant(Skel* (*open)(), int (*load)(Skel*), void (*destroy)(Skel*), const MapSizes& sizes,
                     const TracerConfig& config);
    TracerPrograms progs_{};
    TracerMaps maps_{};
    std::function<void()> destroy_skeleton_;
    ::bpf_object* obj_ = nullptr;
    bool compat_ = false;
    bool dwarf_unwind_ = false;
    uint32_t fault_threshold_ = 0;
    bool mappings_ = false;
    std::string unwinder_error_;
    std::string mappings_why_not_;
    double growth_weight_ = 0;
    ring_buffer* rb_ = nullptr;
    bpf_link* rss_iter_ = nullptr;
    void sum_rss_exactly() const;
    EventHandler on_event_;
    MapSizes sizes_;
    std::vector<bpf_link*> links_;
    std::vector<int> multi_fds_;
    bool use_multi_ = false;
    std::vector<AttachedLibrary> libraries_;
};

}  // namespace memtop
