#include "kernel/tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <unordered_set>

#include "kernel/uprobe_multi.h"
#include "memtop.skel.h"
#include "memtop_compat.skel.h"
#include "util/errors.h"

namespace memtop {

static_assert(sizeof(memtop_stack) == 8 + 8 * MEMTOP_MAX_FRAMES);
static_assert(sizeof(memtop_alloc_key) == 16);
static_assert(sizeof(memtop_alloc_val) == 16);
static_assert(sizeof(memtop_agg_key) == 16);
static_assert(sizeof(memtop_agg_val) == 32);
static_assert(sizeof(memtop_proc) == 56);
static_assert(sizeof(memtop_event) == 136);
static_assert(sizeof(memtop_map_proc) == 32);
static_assert(sizeof(memtop_unwind_row) == 8);
static_assert(sizeof(memtop_file_key) == 16);
static_assert(sizeof(memtop_unwind_file) == 16);
static_assert(sizeof(memtop_rss) == 56);

namespace {

bool g_verbose = false;
std::deque<std::string> g_libbpf_tail;  // last libbpf warnings, for error messages

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (g_verbose) {
        // Verifier logs come as one message of many kilobytes: print whole.
        vfprintf(stderr, fmt, args);
        return 0;
    }
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, args);
    if (false) {
    } else if (level == LIBBPF_WARN) {
        g_libbpf_tail.emplace_back(buf);
        if (g_libbpf_tail.size() > 4) g_libbpf_tail.pop_front();
    }
    return 0;
}

std::string libbpf_hint() {
    if (g_verbose || g_libbpf_tail.empty()) return "";
    std::string s = " (";
    std::string last = g_libbpf_tail.back();
    while (!last.empty() && (last.back() == '\n')) last.pop_back();
    return s + last + "; -v shows libbpf's whole log)";
}

bpf_program* program_for(const TracerPrograms& progs, ProbeProgram p) {
    switch (p) {
        case ProbeProgram::MallocEntry:
            return progs.malloc_entry;
        case ProbeProgram::NewEntry:
            return progs.new_entry;
        case ProbeProgram::CallocEntry:
            return progs.calloc_entry;
        case ProbeProgram::ReallocEntry:
            return progs.realloc_entry;
        case ProbeProgram::ReallocarrayEntry:
            return progs.reallocarray_entry;
        case ProbeProgram::MemalignEntry:
            return progs.memalign_entry;
        case ProbeProgram::PosixMemalignEntry:
            return progs.posix_memalign_entry;
        case ProbeProgram::FreeEntry:
            return progs.free_entry;
    }
    return nullptr;
}

// Every (key, value) of a hash map, copied out: in batches of 4096 entries
// per syscall (Linux 5.6+), else one get_next_key + lookup per entry. A
// purge walks the whole allocs map, so this matters with --heap-all.
template <typename K, typename V>
std::vector<std::pair<K, V>> dump_map(int fd) {
    std::vector<std::pair<K, V>> out;
    constexpr uint32_t kBatch = 4096;
    std::vector<K> keys(kBatch);
    std::vector<V> values(kBatch);
    K out_batch{};
    bool first = true, batched = true;
    for (;;) {
        uint32_t count = kBatch;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_lookup_batch(fd, first ? nullptr : &out_batch, &out_batch, keys.data(), values.data(), &count,
                                       &opts);
        if (err && errno != ENOENT) {
            batched = first;  // unsupported: walk instead (only if nothing was read yet)
            break;
        }
        for (uint32_t i = 0; i < count; i++) out.emplace_back(keys[i], values[i]);
        first = false;
        if (err) break;  // ENOENT: that was the last batch
    }
    if (batched && !first) return out;
    out.clear();
    K key{}, next{};
    K* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        V v;
        if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.emplace_back(next, v);
        key = next;
        prev = &key;
    }
    return out;
}

template <typename K, typename V>
std::vector<K> dump_keys(int fd) {
    std::vector<K> out;
    for (auto& kv : dump_map<K, V>(fd)) out.push_back(kv.first);
    return out;
}

// Each uprobe detach waits for an RCU grace period (~70 ms here); one after
// another, 30 probes took two seconds. Detached from several threads at
// once, the waits overlap.
void destroy_links(std::vector<bpf_link*>& links) {
    if (links.size() <= 2) {
        for (auto* l : links) bpf_link__destroy(l);
        links.clear();
        return;
    }
    std::vector<std::thread> workers;
    size_t nthreads = std::min<size_t>(links.size(), 32);
    for (size_t t = 0; t < nthreads; t++)
        workers.emplace_back([&links, t, nthreads] {
            for (size_t i = t; i < links.size(); i += nthreads) bpf_link__destroy(links[i]);
        });
    for (auto& w : workers) w.join();
    links.clear();
}

// The syscall tracepoints are attached by id, which libbpf reads from tracefs
// (debugfs's tracing/ first, as libbpf 1.1 does). tracefs is mounted where
// the kernel expects it when nothing is; empty means ready.
std::string syscall_events_ready() {
    const char* events[] = {"sys_exit_mmap", "sys_enter_munmap", "sys_exit_mremap", "sys_enter_brk", "sys_exit_brk"};
    struct stat st;
    std::string dir = "/sys/kernel/debug/tracing";
    if (stat(dir.c_str(), &st) != 0) {
        dir = "/sys/kernel/tracing";
        if (stat((dir + "/events").c_str(), &st) != 0 && mount("nodev", dir.c_str(), "tracefs", 0, nullptr) != 0)
            return "mount tracefs on " + dir + ": " + strerror(errno);
    }
    for (const char* e : events) {
        std::string path = dir + "/events/syscalls/" + e + "/id";
        if (access(path.c_str(), R_OK) != 0)
            return "no syscall tracepoint " + std::string(e) + " (" + path + ": " + strerror(errno) +
                   "; kernels without CONFIG_FTRACE_SYSCALLS have none)";
    }
    return "";
}

int on_ring_event(void* ctx, void* data, size_t size) {
    if (size < sizeof(memtop_event)) return 0;
    auto* handler = static_cast<Tracer::EventHandler*>(ctx);
    (*handler)(*static_cast<const memtop_event*>(data));
    return 0;
}

}  // namespace

template <typename Skel>
int Tracer::load_variant(Skel* (*open)(), int (*load)(Skel*), void (*destroy)(Skel*), const MapSizes& sizes,
                         const TracerConfig& config) {
    bool allow_uprobe_multi = config.uprobe_multi, allow_dwarf = config.dwarf;
    Skel* skel = open();
    if (!skel) return -errno;
    bpf_map__set_max_entries(skel->maps.allocs, sizes.allocs);
    bpf_map__set_max_entries(skel->maps.stacks, sizes.stacks);
    bpf_map__set_max_entries(skel->maps.aggs, sizes.aggs);
    bpf_map__set_max_entries(skel->maps.procs, sizes.procs);
    bpf_map__set_max_entries(skel->maps.rss, sizes.procs);
    skel->rodata->self_tgid = static_cast<uint32_t>(getpid());
    skel->rodata->cgroup_filter = config.cgroup_fd >= 0;
    if constexpr (requires { skel->maps.unwind_rows; }) {
        bpf_map__set_max_entries(skel->maps.unwind_rows, sizes.unwind_rows);
        // bpf_loop and bpf_find_vma (5.17): a kernel without them gets the
        // frame-pointer walk of the same programs.
        bool has = libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_loop, nullptr) == 1 &&
                   libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_find_vma, nullptr) == 1;
        skel->rodata->dwarf_unwind = has && allow_dwarf;
        fault_threshold_ = 0;
        if (config.fault_sample_bytes && has) {
            double p = page_sample_probability(config.fault_sample_bytes);
            double t = p * 4294967296.0;
            fault_threshold_ = t >= 4294967295.0 ? ~0u : std::max<uint32_t>(1, static_cast<uint32_t>(t));
            growth_weight_ = 4096.0 / (fault_threshold_ == ~0u ? 1.0 : fault_threshold_ / 4294967296.0);
        }
        skel->rodata->fault_sample_threshold = fault_threshold_;
        skel->rodata->traced_only = config.traced_only;

        // Mappings need bpf_task_pt_regs (5.15) in tracepoint programs and
        // the syscall tracepoints; without them the rest loads as before.
        bpf_map__set_max_entries(skel->maps.mapped, sizes.mappings);
        bpf_map__set_max_entries(skel->maps.mapped_ends, sizes.mappings);
        bpf_map__set_max_entries(skel->maps.mapped_aggs, sizes.aggs);
        bpf_map__set_max_entries(skel->maps.map_procs, sizes.procs);
        mappings_why_not_.clear();
        if (!config.mappings)
            mappings_why_not_ = "--no-mappings";
        else if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_task_pt_regs, nullptr) != 1)
            mappings_why_not_ = "this kernel lacks bpf_task_pt_regs (Linux 5.15)";
        else
            mappings_why_not_ = syscall_events_ready();
        mappings_ = mappings_why_not_.empty();

        // Exact resident memory (rss_exact): a task iterator summing the
        // per-CPU parts; it needs bpf_loop and bpf_map_lookup_percpu_elem.
        bool exact =
            has && libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_map_lookup_percpu_elem, nullptr) == 1;
        int ncpus = libbpf_num_possible_cpus();
        skel->rodata->nr_cpus = exact && ncpus > 0 ? static_cast<uint32_t>(ncpus) : 0;
        bpf_program__set_autoload(skel->progs.rss_exact, skel->rodata->nr_cpus != 0);
        for (bpf_program* p : {skel->progs.mmap_exit, skel->progs.munmap_enter, skel->progs.mremap_exit,
                               skel->progs.brk_enter, skel->progs.brk_exit})
            bpf_program__set_autoload(p, mappings_);
    } else {
        mappings_ = false;
        mappings_why_not_ = "the compat BPF build (Linux 5.12 and older) has none";
    }
    use_multi_ = allow_uprobe_multi && kernel_has_uprobe_multi();
    if (use_multi_) {
        bpf_program* p;
        bpf_object__for_each_program(p, skel->obj) {
            if (bpf_program__type(p) == BPF_PROG_TYPE_KPROBE)
                bpf_program__set_expected_attach_type(p, static_cast<bpf_attach_type>(kAttachTraceUprobeMulti));
        }
    }
    int err = load(skel);
    if (err) {
        destroy(skel);
        return err;
    }
    progs_ = TracerPrograms{};
    progs_.malloc_entry = skel->progs.malloc_entry;
    progs_.new_entry = skel->progs.new_entry;
    progs_.calloc_entry = skel->progs.calloc_entry;
    progs_.realloc_entry = skel->progs.realloc_entry;
    progs_.reallocarray_entry = skel->progs.reallocarray_entry;
    progs_.memalign_entry = skel->progs.memalign_entry;
    progs_.posix_memalign_entry = skel->progs.posix_memalign_entry;
    progs_.free_entry = skel->progs.free_entry;
    progs_.alloc_return = skel->progs.alloc_return;
    progs_.process_exec = skel->progs.process_exec;
    progs_.process_exit = skel->progs.process_exit;
    progs_.rss_stat = skel->progs.rss_stat;
    maps_ = TracerMaps{};
    maps_.allocs = skel->maps.allocs;
    maps_.stacks = skel->maps.stacks;
    maps_.aggs = skel->maps.aggs;
    maps_.procs = skel->maps.procs;
    maps_.counters = skel->maps.counters;
    maps_.events = skel->maps.events;
    maps_.rss = skel->maps.rss;
    if constexpr (requires { skel->maps.unwind_rows; }) {
        progs_.page_fault_user = skel->progs.page_fault_user;
        maps_.growth = skel->maps.growth;
        maps_.unwind_rows = skel->maps.unwind_rows;
        maps_.unwind_files = skel->maps.unwind_files;
        dwarf_unwind_ = skel->rodata->dwarf_unwind;
        if (skel->rodata->nr_cpus) progs_.rss_exact = skel->progs.rss_exact;
        if (mappings_) {
            progs_.mmap_exit = skel->progs.mmap_exit;
            progs_.munmap_enter = skel->progs.munmap_enter;
            progs_.mremap_exit = skel->progs.mremap_exit;
            progs_.brk_enter = skel->progs.brk_enter;
            progs_.brk_exit = skel->progs.brk_exit;
            maps_.mapped = skel->maps.mapped;
            maps_.mapped_ends = skel->maps.mapped_ends;
            maps_.mapped_aggs = skel->maps.mapped_aggs;
            maps_.map_procs = skel->maps.map_procs;
        }
    }
    destroy_skeleton_ = [skel, destroy] { destroy(skel); };
    obj_ = skel->obj;
    if (config.cgroup_fd >= 0) {
        uint32_t zero = 0;
        if (bpf_map_update_elem(bpf_map__fd(skel->maps.target_cgroup), &zero, &config.cgroup_fd, BPF_ANY) != 0) {
            int e = errno;
            destroy_skeleton_();
            destroy_skeleton_ = nullptr;
            return -e;
        }
    }
    return 0;
}

double page_sample_probability(uint64_t mean) {
    return mean ? -std::expm1(-4096.0 / static_cast<double>(mean)) : 0.0;
}

Tracer::Tracer(const TracerConfig& config, EventHandler on_event)
    : on_event_(std::move(on_event)), sizes_(config.sizes) {
    const MapSizes& sizes = config.sizes;
    bool verbose = config.verbose, force_compat = config.force_compat;
    g_verbose = verbose;
    libbpf_set_print(libbpf_log);

    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        throw MemtopError(kExitKernel,
                          "load BPF programs: this kernel exposes no BTF (/sys/kernel/btf/vmlinux is "
                          "missing); memtop needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");

    // The full programs first; kernels before 5.12 reject them (task
    // storage in tracing programs, fetching atomics) and get the compat
    // build of the same source.
    // The full programs first; kernels before 5.12 reject them (task
    // storage in tracing programs, fetching atomics) and get the compat
    // build of the same source. The kernel says EPERM/EACCES both for a
    // missing privilege and for a program its verifier refuses; only the
    // first is the user's to fix.
    bool privileged = geteuid() == 0;
    auto permission_error = [&](int err) {
        return MemtopError(kExitPermission, describe("load BPF programs", err) +
                                                " (memtop needs root, or CAP_BPF and CAP_PERFMON)" + libbpf_hint());
    };
    int err = force_compat
                  ? -ENOTSUP
                  : load_variant<memtop_bpf>(memtop_bpf__open, memtop_bpf__load, memtop_bpf__destroy, sizes, config);
    if (err && !privileged && (err == -EPERM || err == -EACCES)) throw permission_error(err);
    if (err && !force_compat && config.dwarf) {
        // A verifier that refuses the unwinder (it is the largest part) does
        // not cost the rest of the full build: frame pointers, then.
        std::string why = describe("load the table unwinder", err) + libbpf_hint();
        TracerConfig fp_config = config;
        fp_config.dwarf = false;
        if (load_variant<memtop_bpf>(memtop_bpf__open, memtop_bpf__load, memtop_bpf__destroy, sizes, fp_config) == 0) {
            err = 0;
            unwinder_error_ = why;
        }
    }
    if (err) {
        int full_err = err;
        std::string full_hint = libbpf_hint();
        TracerConfig compat_config = config;
        compat_config.dwarf = false;
        err = load_variant<memtop_compat_bpf>(memtop_compat_bpf__open, memtop_compat_bpf__load,
                                              memtop_compat_bpf__destroy, sizes, compat_config);
        if (err && !privileged && (err == -EPERM || err == -EACCES)) throw permission_error(err);
        if (err) {
            if (force_compat)
                throw MemtopError(kExitKernel, describe("load BPF programs (compat build)", err) + libbpf_hint());
            throw MemtopError(kExitKernel, describe("load BPF programs", full_err) + full_hint);
        }
        compat_ = true;
    }

    for (bpf_program* p :
         {progs_.process_exec, progs_.process_exit, progs_.rss_stat, progs_.page_fault_user, progs_.mmap_exit,
          progs_.munmap_enter, progs_.mremap_exit, progs_.brk_enter, progs_.brk_exit}) {
        if (!p || (p == progs_.page_fault_user && !fault_threshold_)) continue;
        bpf_link* l = bpf_program__attach(p);
        if (!l) {
            int e = errno;
            release();
            throw MemtopError(kExitKernel,
                              describe(std::string("attach tracepoint ") + bpf_program__name(p), e) + libbpf_hint());
        }
        links_.push_back(l);
    }

    if (progs_.rss_exact) {
        // Not fatal: without it resident memory is rss_stat's folded values.
        rss_iter_ = bpf_program__attach_iter(progs_.rss_exact, nullptr);
        if (!rss_iter_ && verbose) fprintf(stderr, "memtop: attach rss_exact iterator: %s\n", strerror(errno));
    }

    rb_ = ring_buffer__new(bpf_map__fd(maps_.events), on_ring_event, &on_event_, nullptr);
    if (!rb_) {
        int e = errno;
        release();
        throw MemtopError(kExitFailure, describe("create ring buffer reader", e));
    }
}

Tracer::~Tracer() {
    release();
}

// Closing the link fds detaches every probe; the kernel does the same when
// memtop dies, even by SIGKILL, so nothing stays attached.
void Tracer::release() {
    if (rb_) ring_buffer__free(rb_);
    rb_ = nullptr;
    if (rss_iter_) bpf_link__destroy(rss_iter_);
    rss_iter_ = nullptr;
    destroy_links(links_);
    for (int fd : multi_fds_) close(fd);
    multi_fds_.clear();
    if (destroy_skeleton_) destroy_skeleton_();
    destroy_skeleton_ = nullptr;
    obj_ = nullptr;
}

uint64_t Tracer::kernel_bytes() const {
    uint64_t total = 0;
    if (!obj_) return 0;
    bpf_map* m;
    bpf_object__for_each_map(m, obj_) {
        int fd = bpf_map__fd(m);
        if (fd < 0) continue;
        // The kernel's own accounting of the map ("memlock:" in its fdinfo).
        FILE* f = fopen(("/proc/self/fdinfo/" + std::to_string(fd)).c_str(), "r");
        if (!f) continue;
        char line[128];
        unsigned long long v;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "memlock: %llu", &v) == 1) total += v;
        fclose(f);
    }
    return total;
}

const AttachedLibrary& Tracer::attach_library(const std::string& open_path, const std::string& shown_path, int pid) {
    auto image = ElfImage::open(open_path);
    AttachedLibrary lib{shown_path, pid, plan_probes(*image), 0};
    std::string who = pid < 0 ? "all processes" : "pid " + std::to_string(pid);

    // Offsets per program: entry programs by argument layout, one return
    // program for every allocation.
    std::map<bpf_program*, std::vector<const ProbeSite*>> groups;
    for (const auto& site : lib.sites) {
        if (!site.forwards_to.empty()) continue;
        groups[program_for(progs_, site.program)].push_back(&site);
        if (site.has_return) groups[progs_.alloc_return].push_back(&site);
    }
    if (groups.empty())
        throw MemtopError(kExitAttach, "attach to " + shown_path + " (" + who +
                                           "): it defines none of the allocator functions memtop traces "
                                           "(malloc, free, operator new, ...)");

    size_t links_before = links_.size(), fds_before = multi_fds_.size();
    auto fail = [&](const ProbeSite& site, bool ret, int err) {
        std::vector<bpf_link*> partial(links_.begin() + links_before, links_.end());
        links_.resize(links_before);
        destroy_links(partial);
        for (size_t i = fds_before; i < multi_fds_.size(); i++) close(multi_fds_[i]);
        multi_fds_.resize(fds_before);
        char where[64];
        snprintf(where, sizeof where, "+0x%llx", (unsigned long long)site.insn_offset);
        std::string why = describe(std::string("attach ") + (ret ? "uretprobe " : "uprobe ") + site.symbol + where +
                                       " in " + shown_path + " (" + who + ")",
                                   err);
        // The kernel allows one reference-counter offset per probed address;
        // Debian 12's BCC tools register theirs with a nonzero one.
        if (err == EINVAL || err == -EINVAL)
            why +=
                " (if the kernel log says 'ref_ctr_offset mismatch', another tracer, such as a BCC tool, "
                "holds a uprobe at this address; stop it and retry)";
        throw MemtopError(kExitAttach, why + libbpf_hint());
    };

    for (const auto& [prog, sites] : groups) {
        bool ret = prog == progs_.alloc_return;
        if (use_multi_) {
            std::vector<uint64_t> offsets;
            for (const auto* s : sites) offsets.push_back(s->file_offset);
            int fd = attach_uprobe_multi(bpf_program__fd(prog), open_path, offsets, ret, pid);
            if (fd < 0) fail(*sites.front(), ret, fd);
            multi_fds_.push_back(fd);
            lib.links += offsets.size();
            continue;
        }
        for (const auto* s : sites) {
            LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
            bpf_link* l = bpf_program__attach_uprobe_opts(prog, pid, open_path.c_str(), s->file_offset, &opts);
            if (!l) fail(*s, ret, errno);
            links_.push_back(l);
            lib.links++;
        }
    }
    libraries_.push_back(std::move(lib));
    return libraries_.back();
}

size_t Tracer::probe_count() const {
    size_t n = 0;
    for (const auto& l : libraries_) n += l.links;
    return n;
}

std::vector<StackStats> Tracer::read_growth() const {
    std::vector<StackStats> out;
    if (!maps_.growth) return out;
    for (const auto& [k, v] : dump_map<memtop_agg_key, memtop_growth_val>(bpf_map__fd(maps_.growth))) {
        StackStats s;
        s.pid = k.tgid;
        s.stack_id = k.stack_id;
        s.allocs = static_cast<int64_t>(v.samples);
        s.allocs_total = v.samples;
        s.bytes = static_cast<int64_t>(static_cast<double>(v.samples) * growth_weight_ + 0.5);
        s.alloc_bytes_total = static_cast<uint64_t>(s.bytes);
        out.push_back(s);
    }
    return out;
}

std::map<uint32_t, MappedStats> Tracer::read_mapped() const {
    std::map<uint32_t, MappedStats> out;
    if (!maps_.map_procs) return out;
    for (const auto& [tgid, m] : dump_map<uint32_t, memtop_map_proc>(bpf_map__fd(maps_.map_procs)))
        out[tgid] = {m.mm_id, m.bytes, m.peak_bytes, m.maps_total};
    return out;
}

std::vector<StackStats> Tracer::read_mappings() const {
    std::vector<StackStats> out;
    if (!maps_.mapped_aggs) return out;
    // Only the address space each process has now: an ended one's records
    // wait for forget().
    auto live = read_mapped();
    for (const auto& [k, v] : dump_map<memtop_agg_key, memtop_agg_val>(bpf_map__fd(maps_.mapped_aggs))) {
        auto it = live.find(k.tgid);
        if (it == live.end() || it->second.mm_id != k.epoch) continue;
        out.push_back({k.tgid, k.epoch, k.stack_id, v.bytes, v.allocs, v.alloc_bytes_total, v.allocs_total});
    }
    return out;
}

int Tracer::unwind_rows_fd() const {
    return maps_.unwind_rows ? bpf_map__fd(maps_.unwind_rows) : -1;
}
int Tracer::unwind_files_fd() const {
    return maps_.unwind_files ? bpf_map__fd(maps_.unwind_files) : -1;
}

int Tracer::epoll_fd() const {
    return ring_buffer__epoll_fd(rb_);
}

void Tracer::consume_events() {
    ring_buffer__consume(rb_);
}

std::vector<ProcessStats> Tracer::read_processes() const {
    std::vector<ProcessStats> out;
    for (const auto& [tgid, p] : dump_map<uint32_t, memtop_proc>(bpf_map__fd(maps_.procs))) {
        ProcessStats s;
        s.pid = tgid;
        s.epoch = p.epoch;
        s.comm.assign(p.comm, strnlen(p.comm, sizeof p.comm));
        s.heap_bytes = p.heap_bytes;
        s.heap_peak_bytes = p.heap_peak_bytes;
        s.allocs_total = p.allocs_total;
        s.frees_total = p.frees_total;
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<StackStats> Tracer::read_stacks() const {
    std::vector<StackStats> out;
    for (const auto& [k, v] : dump_map<memtop_agg_key, memtop_agg_val>(bpf_map__fd(maps_.aggs))) {
        out.push_back({k.tgid, k.epoch, k.stack_id, v.bytes, v.allocs, v.alloc_bytes_total, v.allocs_total});
    }
    return out;
}

RssStats rss_from_kernel(const __s64 bytes[4], __s64 peak) {
    RssStats s;
    s.file = bytes[MEMTOP_RSS_FILE];
    s.anon = bytes[MEMTOP_RSS_ANON];
    s.shmem = bytes[MEMTOP_RSS_SHMEM];
    s.swap = bytes[MEMTOP_RSS_SWAP];
    s.peak = peak;
    return s;
}

void Tracer::sum_rss_exactly() const {
    if (!rss_iter_) return;
    int fd = bpf_iter_create(bpf_link__fd(rss_iter_));
    if (fd < 0) return;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
}

std::map<uint32_t, RssStats> Tracer::read_rss() const {
    sum_rss_exactly();
    std::map<uint32_t, RssStats> out;
    for (const auto& [tgid, r] : dump_map<uint32_t, memtop_rss>(bpf_map__fd(maps_.rss)))
        out[tgid] = rss_from_kernel(r.bytes, r.peak_bytes);
    return out;
}

std::optional<memtop_stack> Tracer::read_stack(uint64_t stack_id) const {
    memtop_stack s;
    if (bpf_map_lookup_elem(bpf_map__fd(maps_.stacks), &stack_id, &s) != 0) return std::nullopt;
    return s;
}

LostCounters Tracer::read_lost() const {
    int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> per_cpu(ncpu > 0 ? ncpu : 1);
    uint64_t total[MEMTOP_CNT__MAX] = {};
    int fd = bpf_map__fd(maps_.counters);
    for (uint32_t i = 0; i < MEMTOP_CNT__MAX; i++) {
        if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) continue;
        for (auto v : per_cpu) total[i] += v;
    }
    LostCounters c;
    static_assert(std::size(kLostKinds) == MEMTOP_CNT__MAX);
    for (uint32_t i = 0; i < MEMTOP_CNT__MAX; i++) c.count[i] = total[i];
    return c;
}

void Tracer::forget(const std::vector<EndedInstance>& instances) {
    if (instances.empty()) return;
    std::set<std::pair<uint32_t, uint32_t>> dead, dead_mms;
    for (const auto& i : instances) {
        dead.insert({i.pid, i.epoch});
        if (i.mm_id) dead_mms.insert({i.pid, i.mm_id});
    }
    int aggs_fd = bpf_map__fd(maps_.aggs);
    std::unordered_set<uint64_t> referenced;
    for (const auto& k : dump_keys<memtop_agg_key, memtop_agg_val>(aggs_fd)) {
        if (dead.count({k.tgid, k.epoch}))
            bpf_map_delete_elem(aggs_fd, &k);
        else
            referenced.insert(k.stack_id);
    }
    int allocs_fd = bpf_map__fd(maps_.allocs);
    for (const auto& k : dump_keys<memtop_alloc_key, memtop_alloc_val>(allocs_fd))
        if (dead.count({k.tgid, k.epoch})) bpf_map_delete_elem(allocs_fd, &k);
    if (maps_.growth) {
        // Growth is per pid (epoch 0): an ended instance takes its pid's with it.
        std::set<uint32_t> dead_pids;
        for (const auto& d : dead) dead_pids.insert(d.first);
        int growth_fd = bpf_map__fd(maps_.growth);
        for (const auto& k : dump_keys<memtop_agg_key, memtop_growth_val>(growth_fd)) {
            if (dead_pids.count(k.tgid))
                bpf_map_delete_elem(growth_fd, &k);
            else
                referenced.insert(k.stack_id);
        }
    }
    if (maps_.mapped_aggs) {
        // An ended address space's mappings: their records and totals.
        int starts_fd = bpf_map__fd(maps_.mapped), ends_fd = bpf_map__fd(maps_.mapped_ends);
        for (const auto& k : dump_keys<memtop_alloc_key, memtop_alloc_val>(starts_fd))
            if (dead_mms.count({k.tgid, k.epoch})) bpf_map_delete_elem(starts_fd, &k);
        for (const auto& k : dump_keys<memtop_alloc_key, uint64_t>(ends_fd))
            if (dead_mms.count({k.tgid, k.epoch})) bpf_map_delete_elem(ends_fd, &k);
        int fd = bpf_map__fd(maps_.mapped_aggs);
        for (const auto& k : dump_keys<memtop_agg_key, memtop_agg_val>(fd)) {
            if (dead_mms.count({k.tgid, k.epoch}))
                bpf_map_delete_elem(fd, &k);
            else
                referenced.insert(k.stack_id);
        }
    }
    // A stack no agg references is deleted. The kernel may be storing one
    // meanwhile whose agg did not exist yet when the aggs were read above:
    // so the aggs are read again after the deletes, and a deleted stack that
    // is referenced by then is put back. A charge after that second read
    // finds its stack missing and stores it again itself (record_alloc).
    int stacks_fd = bpf_map__fd(maps_.stacks);
    std::vector<std::pair<uint64_t, memtop_stack>> deleted;
    for (const auto& [id, stack] : dump_map<uint64_t, memtop_stack>(stacks_fd))
        if (!referenced.count(id) && bpf_map_delete_elem(stacks_fd, &id) == 0) deleted.emplace_back(id, stack);
    if (deleted.empty()) return;
    referenced.clear();
    for (const auto& k : dump_keys<memtop_agg_key, memtop_agg_val>(aggs_fd)) referenced.insert(k.stack_id);
    if (maps_.growth)
        for (const auto& k : dump_keys<memtop_agg_key, memtop_growth_val>(bpf_map__fd(maps_.growth)))
            referenced.insert(k.stack_id);
    if (maps_.mapped_aggs)
        for (const auto& k : dump_keys<memtop_agg_key, memtop_agg_val>(bpf_map__fd(maps_.mapped_aggs)))
            referenced.insert(k.stack_id);
    for (const auto& [id, stack] : deleted)
        if (referenced.count(id)) bpf_map_update_elem(stacks_fd, &id, &stack, BPF_NOEXIST);
}

}  // namespace memtop
