// Loading: which build, which programs, and the fallbacks when a kernel
// refuses part of it. Attaching allocator probes to files is in
// probe_links.cpp; reading and purging maps in map_reader.cpp and purge.cpp.
#include "kernel/tracer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <thread>
#include <vector>

#include "kernel/late_detach.h"
#include "kernel/libbpf_log.h"
#include "kernel/map_dump.h"
#include "kernel/purge.h"
#include "kernel/pymalloc_probes.h"
#include "kernel/uprobe_multi.h"
#include "memtop.h"
#include "memtop.skel.h"
#include "memtop_compat.skel.h"
#include "model/sampling.h"
#include "util/errors.h"

namespace memtop {

static_assert(sizeof(memtop_stack) == 8 + 8 * MEMTOP_MAX_FRAMES);
static_assert(sizeof(memtop_alloc_key) == 16);
static_assert(sizeof(memtop_alloc_val) == 24);
static_assert(sizeof(memtop_mi_tag) == 16);
static_assert(sizeof(memtop_agg_key) == 24);
static_assert(sizeof(memtop_agg_val) == 48);
static_assert(sizeof(memtop_proc) == 88);
static_assert(sizeof(memtop_event) == 168);
static_assert(sizeof(memtop_stack_event) == 24);
static_assert(sizeof(memtop_py_proc) == 32);
static_assert(sizeof(memtop_py_stack) == 8 + 16 * MEMTOP_PY_MAX_FRAMES);
static_assert(sizeof(memtop_map_proc) == 32);
static_assert(sizeof(memtop_unwind_row) == 8);
static_assert(sizeof(memtop_file_key) == 16);
static_assert(sizeof(memtop_unwind_file) == 16);
static_assert(sizeof(memtop_rss) == 56);

namespace {

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
    return dispatch_event(*static_cast<EventSink*>(ctx), data, size);
}

int map_fd(bpf_object* obj, const char* name) {
    bpf_map* m = bpf_object__find_map_by_name(obj, name);
    return m ? bpf_map__fd(m) : -1;
}

// Sizes of the maps the command line can change, by name; maps a build
// lacks are skipped. A hash map's bucket array (16 bytes a bucket, rounded
// up to a power of two) is allocated whole when the map is made, even with
// BPF_F_NO_PREALLOC: a table of 2^21 entries costs 32 MiB before its first
// element. So the tables of a part that is off get one entry (the Python
// object domain without --python-objects: nothing writes them then), and
// mimalloc's heap tags, written only for blocks of heaps a program made
// with mi_heap_new, an eighth of the allocation table.
void size_maps(bpf_object* obj, const MapSizes& sizes, bool python_objects) {
    uint32_t py_allocs = python_objects ? sizes.allocs : 1, py_aggs = python_objects ? sizes.aggs : 1;
    const struct {
        const char* name;
        uint32_t size;
    } table[] = {
        {"allocs", sizes.allocs},
        {"stacks", sizes.stacks},
        {"aggs", sizes.aggs},
        {"procs", sizes.procs},
        {"rss", sizes.procs},
        {"unwind_rows", sizes.unwind_rows},
        {"mapped", sizes.mappings},
        {"mapped_ends", sizes.mappings},
        {"mapped_aggs", sizes.aggs},
        {"map_procs", sizes.procs},
        {"py_stacks", sizes.stacks},
        {"targets", sizes.procs},
        {"mi_blocks", std::max(sizes.allocs / 8, 1u)},
        {"py_allocs", py_allocs},
        {"py_aggs", py_aggs},
    };
    for (const auto& t : table)
        if (bpf_map* m = bpf_object__find_map_by_name(obj, t.name)) bpf_map__set_max_entries(m, t.size);
}

}  // namespace

// How many objects load memtop's programs at once: one per core that is
// not busy right now (procs_running in /proc/stat counts memtop itself), up
// to 4. On a 2-core VM two objects took 60-100 ms off the ~240 ms load when
// the other core was free, and added ~80 ms when both were taken (each
// object parses the kernel's BTF and relocates its programs again).
size_t load_parts() {
    // Test seam (docs/testing.md): the split whatever the host's load, so
    // that the several-object path is tested on a busy host too.
    if (const char* forced = std::getenv("MEMTOP_TEST_LOAD_PARTS")) {
        long n = std::strtol(forced, nullptr, 10);
        if (n >= 1 && n <= 4) return static_cast<size_t>(n);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long running = 1;
    if (FILE* f = fopen("/proc/stat", "re")) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "procs_running %ld", &running) == 1) break;
        fclose(f);
    }
    long idle = cores - std::max(running - 1, 0L);
    return static_cast<size_t>(std::clamp(idle, 1L, 4L));
}

double page_sample_probability(uint64_t mean) {
    return mean ? -std::expm1(-4096.0 / static_cast<double>(mean)) : 0.0;
}

bool Tracer::needed(ProgramNeeds needs) const {
    switch (needs) {
        case ProgramNeeds::Always:
            return true;
        case ProgramNeeds::EntryCookies:
            return entry_cookies_;
        case ProgramNeeds::NoEntryCookies:
            return !entry_cookies_;
        case ProgramNeeds::NoSessions:
            return !use_session_;
        case ProgramNeeds::GrowthStacks:
            return fault_threshold_ != 0;
        case ProgramNeeds::Mappings:
            return mappings_;
        case ProgramNeeds::ExactRss:
            return exact_rss_possible_;
        case ProgramNeeds::Mimalloc:
            return true;  // when the mimalloc object loads (load_mimalloc)
        case ProgramNeeds::MiHeaps:
            return mi_heaps_;
        case ProgramNeeds::PythonDomain:
            return use_multi_ && python_objects_;
        case ProgramNeeds::PythonSampled:
            return python_objects_;
        case ProgramNeeds::PythonFrames:
            return true;
    }
    return false;
}

// A BTF file of no types, for the object that only makes the maps of a
// split load (load_variant): libbpf 1.1 reads and parses the kernel's BTF
// (5.5 MB from sysfs, 4 KiB a read: ~45 ms of a core here, seconds in an
// emulated guest) for every object with CO-RE relocations, whether or not
// it loads a program, unless the object names a BTF of its own. The file
// is a memfd, open for memtop's life; "" if it could not be made.
namespace {

const char* empty_btf_path() {
    static const std::string path = [] {
        struct {
            uint16_t magic = 0xeB9F;
            uint8_t version = 1, flags = 0;
            uint32_t hdr_len = 24, type_off = 0, type_len = 0, str_off = 0, str_len = 1;
            char strings[1] = {0};
        } __attribute__((packed)) btf;
        static_assert(sizeof btf == 25);
        int fd = memfd_create("memtop-empty-btf", MFD_CLOEXEC);
        if (fd < 0) return std::string();
        if (write(fd, &btf, sizeof btf) != static_cast<ssize_t>(sizeof btf)) {
            close(fd);
            return std::string();
        }
        return "/proc/self/fd/" + std::to_string(fd);
    }();
    return path.c_str();
}

}  // namespace

template <typename Skel>
int Tracer::load_variant(Skel* (*open)(const bpf_object_open_opts*), int (*load)(Skel*), void (*destroy)(Skel*),
                         const TracerConfig& config) {
    const size_t parts = load_parts();
    LIBBPF_OPTS(bpf_object_open_opts, maps_only);
    if (parts > 1 && *empty_btf_path()) maps_only.btf_custom_path = empty_btf_path();
    Skel* skel = open(parts > 1 ? &maps_only : nullptr);
    if (!skel) return -errno;
    size_maps(skel->obj, config.sizes, config.python_objects);
    skel->rodata->self_tgid = static_cast<uint32_t>(getpid());
    skel->rodata->cgroup_filter = config.cgroup_fd >= 0;
    // --sample (bpf/sample.h): the mean interval and the log table its
    // exponential draws use.
    skel->rodata->heap_sample_bytes = config.heap_sample_bytes;
    // The Python domain's own mean, for the objects counted at pymalloc's
    // sites (bpf/pymalloc.h); in-process sampled ones never reach a site.
    if constexpr (requires { skel->rodata->py_sample_bytes; })
        skel->rodata->py_sample_bytes = config.python_objects ? config.python_sample_bytes : 0;
    auto log2_table = log2_fraction_table();
    for (size_t i = 0; i < log2_table.size(); i++) skel->rodata->log2_frac_q24[i] = log2_table[i];
    fault_threshold_ = 0;
    growth_weight_ = 0;
    exact_rss_possible_ = false;
    entry_cookies_ = false;
    if constexpr (requires { skel->rodata->dwarf_unwind; }) {
        // The plain allocation entries in one program, told apart by the
        // attach cookie (bpf/heap.h's alloc_entry): verified once, not six
        // times; operator new's three likewise (op_new_entry). Cookies came in 5.15, but Linux 6.1's verifier puts
        // alloc_entry's stack with the unwinder's calls over its 512 bytes
        // (the six programs fit): so from the kernels with uprobe_multi
        // (6.6), and the six again if a verifier refuses it all the same
        // (the constructor retries). Test seam (docs/testing.md): the six.
        entry_cookies_ = !entry_cookies_refused_ && !std::getenv("MEMTOP_TEST_ENTRY_PROGRAMS") &&
                         kernel_has_uprobe_multi() &&
                         libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie, nullptr) == 1;
        // bpf_loop and bpf_find_vma (5.17): a kernel without them gets the
        // frame-pointer walk of the same programs.
        bool has = libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_loop, nullptr) == 1 &&
                   libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_find_vma, nullptr) == 1;
        skel->rodata->dwarf_unwind = has && config.dwarf;
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
        if (!config.mappings)
            mappings_why_not_ = "--no-mappings";
        else if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_task_pt_regs, nullptr) != 1)
            mappings_why_not_ = "this kernel lacks bpf_task_pt_regs (Linux 5.15)";
        else
            mappings_why_not_ = syscall_events_ready();
        mappings_ = mappings_why_not_.empty();

        // Exact resident memory (rss_exact): a task iterator summing the
        // per-CPU parts; it needs bpf_loop and bpf_map_lookup_percpu_elem.
        int ncpus = libbpf_num_possible_cpus();
        exact_rss_possible_ =
            has && ncpus > 0 &&
            libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_map_lookup_percpu_elem, nullptr) == 1;
        skel->rodata->nr_cpus = exact_rss_possible_ ? static_cast<uint32_t>(ncpus) : 0;
    } else {
        mappings_ = false;
        mappings_why_not_ = "the compat BPF build (Linux 5.12 and older) has none";
    }
    use_multi_ = config.uprobe_multi && kernel_has_uprobe_multi();
    // Sessions: the entry programs of the calls that have a return take it
    // themselves (bpf/heap.h), and trap it only when they need it.
    use_session_ = use_multi_ && config.uprobe_session && kernel_has_uprobe_session();
    skel->rodata->uprobe_session = use_session_;
    auto set_attach_types = [&](Skel* s) {
        if (!use_multi_) return;
        bpf_program* p;
        bpf_object__for_each_program(p, s->obj) {
            if (bpf_program__type(p) != BPF_PROG_TYPE_KPROBE) continue;
            bool session = false;
            for (size_t i = 0; i < kProgramCount; i++)
                if (std::strcmp(kPrograms[i].name, bpf_program__name(p)) == 0)
                    session = use_session_ && session_entry(kPrograms[i]);
            bpf_program__set_expected_attach_type(
                p, static_cast<bpf_attach_type>(session ? kAttachTraceUprobeSession : kAttachTraceUprobeMulti));
        }
    };
    // Programs that are not needed are not loaded (nor verified). The
    // verifier takes most of memtop's start-up (~15 ms per allocator entry
    // program, ~170 ms in all on a 2-core VM), one program after another
    // within one object: so the maps are created by one object that loads
    // no program, and the programs are split between objects that share its
    // maps and are loaded on several threads at once. Part -1: not loaded.
    std::vector<int> part;
    {
        std::vector<std::pair<size_t, size_t>> cost;  // (instructions, program's place in the object)
        bpf_program* p;
        bpf_object__for_each_program(p, skel->obj) {
            bool on = true;
            for (size_t i = 0; i < kProgramCount; i++)
                if (std::strcmp(kPrograms[i].name, bpf_program__name(p)) == 0) on = needed(kPrograms[i].needs);
            if (on) cost.emplace_back(bpf_program__insn_cnt(p), part.size());
            part.push_back(on ? 0 : -1);
        }
        std::sort(cost.rbegin(), cost.rend());
        std::vector<size_t> load_of(parts, 0);
        for (const auto& [insns, at] : cost) {
            size_t k = std::min_element(load_of.begin(), load_of.end()) - load_of.begin();
            part[at] = static_cast<int>(k);
            load_of[k] += insns;
        }
    }
    auto choose = [&](Skel* s, int which) {
        size_t at = 0;
        bpf_program* p;
        bpf_object__for_each_program(p, s->obj) bpf_program__set_autoload(p, part[at++] == which);
    };
    std::vector<Skel*> loaders;  // the objects whose programs load
    auto destroy_all = [destroy](Skel* maps_owner, const std::vector<Skel*>& others) {
        for (Skel* o : others) destroy(o);
        destroy(maps_owner);
    };
    int err = 0;
    if (parts == 1) {
        set_attach_types(skel);
        choose(skel, 0);
        err = load(skel);
        if (err) {
            destroy(skel);
            return err;
        }
        loaders.push_back(skel);
    } else {
        choose(skel, -2);  // the maps alone
        err = load(skel);
        if (err) {
            destroy(skel);
            return err;
        }
        for (size_t k = 0; k < parts && !err; k++) {
            Skel* o = open(nullptr);
            if (!o) {
                err = -errno;
                break;
            }
            loaders.push_back(o);
            bpf_map* m;
            bpf_object__for_each_map(m, o->obj) {
                bpf_map* own = bpf_object__find_map_by_name(skel->obj, bpf_map__name(m));
                if (!own || bpf_map__fd(own) < 0) continue;
                if ((err = bpf_map__reuse_fd(m, bpf_map__fd(own)))) break;
            }
            set_attach_types(o);
            choose(o, static_cast<int>(k));
        }
        if (!err) {
            std::vector<int> errs(loaders.size(), 0);
            std::vector<std::thread> threads;
            for (size_t k = 1; k < loaders.size(); k++) threads.emplace_back([&, k] { errs[k] = load(loaders[k]); });
            errs[0] = load(loaders[0]);
            for (auto& t : threads) t.join();
            for (int e : errs)
                if (e && !err) err = e;
        }
        if (err) {
            destroy_all(skel, loaders);
            return err;
        }
    }
    skeleton_ = std::make_unique<SkeletonOwner>();
    skeleton_->destroy = [skel, loaders, destroy_all] {
        std::vector<Skel*> others;
        for (Skel* o : loaders)
            if (o != skel) others.push_back(o);
        destroy_all(skel, others);
    };
    obj_ = skel->obj;
    if constexpr (requires { skel->rodata->dwarf_unwind; }) dwarf_unwind_ = skel->rodata->dwarf_unwind;
    for (size_t i = 0; i < kProgramCount; i++) {
        programs_[i] = nullptr;
        for (Skel* o : loaders) {
            bpf_program* p = bpf_object__find_program_by_name(o->obj, kPrograms[i].name);
            if (p && bpf_program__autoload(p)) programs_[i] = p;
        }
    }
    maps_ = KernelMaps{};
    maps_.allocs = map_fd(obj_, "allocs");
    maps_.stacks = map_fd(obj_, "stacks");
    maps_.aggs = map_fd(obj_, "aggs");
    maps_.procs = map_fd(obj_, "procs");
    maps_.targets = map_fd(obj_, "targets");
    maps_.counters = map_fd(obj_, "counters");
    maps_.events = map_fd(obj_, "events");
    maps_.rss = map_fd(obj_, "rss");
    maps_.growth = fault_threshold_ ? map_fd(obj_, "growth") : -1;
    maps_.unwind_rows = map_fd(obj_, "unwind_rows");
    maps_.unwind_files = map_fd(obj_, "unwind_files");
    maps_.py_procs = map_fd(obj_, "py_procs");
    maps_.py_stacks = map_fd(obj_, "py_stacks");
    maps_.py_procs_gen = map_fd(obj_, "py_procs_gen");
    maps_.py_hold = map_fd(obj_, "py_hold");
    maps_.mi_blocks = map_fd(obj_, "mi_blocks");
    maps_.mi_heaps = map_fd(obj_, "mi_heaps");
    maps_.py_allocs = map_fd(obj_, "py_allocs");
    maps_.py_aggs = map_fd(obj_, "py_aggs");
    if (mappings_) {
        maps_.mapped = map_fd(obj_, "mapped");
        maps_.mapped_ends = map_fd(obj_, "mapped_ends");
        maps_.mapped_aggs = map_fd(obj_, "mapped_aggs");
        maps_.map_procs = map_fd(obj_, "map_procs");
    }
    if (config.cgroup_fd >= 0) {
        uint32_t zero = 0;
        if (bpf_map_update_elem(map_fd(obj_, "target_cgroup"), &zero, &config.cgroup_fd, BPF_ANY) != 0) {
            int e = errno;
            skeleton_.reset();
            obj_ = nullptr;
            return -e;
        }
    }
    return 0;
}

namespace {

constexpr unsigned kCapBpf = 39;  // CAP_BPF (Linux 5.8); older headers lack the name

// Whether this process holds what loading BPF takes (CAP_BPF, or
// CAP_SYS_ADMIN which also grants it), as effective capabilities: root
// without them (a systemd unit's bounding set, setpriv) is refused like
// any other user, and that refusal is the user's to fix.
bool may_load_bpf() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (syscall(SYS_capget, &header, data) != 0) return geteuid() == 0;
    auto effective = [&](unsigned cap) { return (data[cap / 32].effective >> (cap % 32)) & 1u; };
    return effective(CAP_SYS_ADMIN) || effective(kCapBpf);
}

}  // namespace

Tracer::Tracer(const TracerConfig& config, EventSink& sink)
    : events_(sink, *this),
      sizes_(config.sizes),
      python_objects_(config.python_objects),
      python_sample_bytes_(config.python_objects ? config.python_sample_bytes : 0) {
    capture_libbpf_log(config.verbose);
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
        throw MemtopError(kExitKernel,
                          "load BPF programs: this kernel exposes no BTF (/sys/kernel/btf/vmlinux is "
                          "missing); memtop needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");

    // The full programs first; kernels before 5.12 reject them (task
    // storage in tracing programs, fetching atomics) and get the compat
    // build of the same source. The kernel says EPERM/EACCES both for a
    // missing privilege and for a program its verifier refuses; only the
    // first is the user's to fix.
    bool privileged = may_load_bpf();
    auto permission_error = [&](int err) {
        return MemtopError(kExitPermission, describe("load BPF programs", err) +
                                                " (memtop needs root, or CAP_BPF and CAP_PERFMON)" + libbpf_hint());
    };
    int err = config.force_compat
                  ? -ENOTSUP
                  : load_variant<memtop_bpf>(memtop_bpf__open_opts, memtop_bpf__load, memtop_bpf__destroy, config);
    if (err && !privileged && (err == -EPERM || err == -EACCES)) throw permission_error(err);
    if (err && entry_cookies_) {
        // alloc_entry refused (see load_variant): one program per entry.
        entry_cookies_refused_ = true;
        err = load_variant<memtop_bpf>(memtop_bpf__open_opts, memtop_bpf__load, memtop_bpf__destroy, config);
    }
    if (err && !config.force_compat && config.dwarf) {
        // A verifier that refuses the unwinder (it is the largest part) does
        // not cost the rest of the full build: frame pointers, then.
        std::string why = describe("load the table unwinder", err) + libbpf_hint();
        TracerConfig fp_config = config;
        fp_config.dwarf = false;
        if (load_variant<memtop_bpf>(memtop_bpf__open_opts, memtop_bpf__load, memtop_bpf__destroy, fp_config) == 0) {
            err = 0;
            unwinder_error_ = why;
        }
    }
    if (err) {
        int full_err = err;
        std::string full_hint = libbpf_hint();
        TracerConfig compat_config = config;
        compat_config.dwarf = false;
        err = load_variant<memtop_compat_bpf>(memtop_compat_bpf__open_opts, memtop_compat_bpf__load,
                                              memtop_compat_bpf__destroy, compat_config);
        if (err && !privileged && (err == -EPERM || err == -EACCES)) throw permission_error(err);
        if (err) {
            if (config.force_compat)
                throw MemtopError(kExitKernel, describe("load BPF programs (compat build)", err) + libbpf_hint());
            throw MemtopError(kExitKernel, describe("load BPF programs", full_err) + full_hint);
        }
        compat_ = true;
    }

    attach_tracepoints();
    ring_.reset(ring_buffer__new(maps_.events, on_ring_event, static_cast<EventSink*>(&events_), nullptr));
    if (!ring_) throw MemtopError(kExitFailure, describe("create ring buffer reader", errno));
    reader_ = std::make_unique<MapReader>(maps_, growth_weight_, sizes_.stacks, config.heap_sample_bytes,
                                          config.python_sample_bytes);
    if (dwarf_unwind_)
        unwind_ = std::make_unique<UnwindTables>(maps_.unwind_rows, maps_.unwind_files, sizes_.unwind_rows,
                                                 config.verbose, cfi_worker_);
    if (maps_.py_procs >= 0 && maps_.py_stacks >= 0) {
        int fd = maps_.py_stacks;
        auto convert = [](const memtop_py_stack& s) {
            RawPyStack r;
            r.pid = s.tgid;
            for (uint32_t i = 0; i < std::min<uint32_t>(s.nr, MEMTOP_PY_MAX_FRAMES); i++)
                if (s.frames[i].code)  // 0: a frame that runs no Python code
                    r.frames.push_back({s.frames[i].code, s.frames[i].instr & ~MEMTOP_PY_ENTRY,
                                        (s.frames[i].instr & MEMTOP_PY_ENTRY) != 0});
            return r;
        };
        python_ = std::make_unique<PythonFrames>(
            [fd, convert](uint64_t id) -> std::optional<RawPyStack> {
                memtop_py_stack s;
                if (bpf_map_lookup_elem(fd, &id, &s) != 0) return std::nullopt;
                return convert(s);
            },
            [fd, convert] {
                std::vector<std::pair<uint64_t, RawPyStack>> out;
                for (const auto& [id, s] : dump_map<uint64_t, memtop_py_stack>(fd)) out.emplace_back(id, convert(s));
                return out;
            });
    }
}

void Tracer::attach_tracepoints() {
    for (size_t i = 0; i < kProgramCount; i++) {
        bpf_program* p = programs_[i];
        if (!p) continue;
        if (kPrograms[i].role == ProgramRole::Tracepoint) {
            LinkPtr l(bpf_program__attach(p));
            if (!l)
                throw MemtopError(kExitKernel, describe(std::string("attach tracepoint ") + kPrograms[i].name, errno) +
                                                   libbpf_hint());
            // The syscall tracepoints (perf events) are the slow ones to release.
            (kPrograms[i].needs == ProgramNeeds::Mappings ? syscall_links_ : links_).push_back(std::move(l));
        } else if (kPrograms[i].role == ProgramRole::Iterator) {
            // Not fatal: without it resident memory is rss_stat's folded values.
            rss_iter_.reset(bpf_program__attach_iter(p, nullptr));
            if (!rss_iter_ && libbpf_verbose())
                fprintf(stderr, "memtop: attach %s iterator: %s\n", kPrograms[i].name, strerror(errno));
        }
    }
}

// Closing the link fds detaches every probe; the kernel does the same when
// memtop dies, even by SIGKILL, so nothing stays attached.
Tracer::~Tracer() {
    ring_.reset();
    rss_iter_.reset();
    // Both kinds at once: each detach waits for grace periods that
    // concurrent detaches share.
    std::thread multi([this] { close_links(multi_links_); });
    std::thread syscalls([this] { destroy_links(syscall_links_); });
    destroy_links(links_);
    multi.join();
    syscalls.join();
}

void Tracer::detach_after_exit() {
    std::vector<int> fds;
    for (const auto& l : syscall_links_) fds.push_back(bpf_link__fd(l.get()));
    // Then our copies: libbpf disables each event first, so no program of
    // them runs from here on, and closes them without waiting (the child's
    // are the last).
    if (close_after_exit(fds)) destroy_links(syscall_links_);
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

int Tracer::epoll_fd() const {
    return ring_buffer__epoll_fd(ring_.get());
}

void Tracer::consume_events() {
    ring_buffer__consume(ring_.get());
    // One table at a time, the ring read again after each: what came
    // meanwhile (a new Python stack whose code objects may soon be freed)
    // waits for one build at most.
    while (!unwind_needs_.empty()) {
        auto [pid, file] = unwind_needs_.front();
        unwind_needs_.pop_front();
        unwind_->on_need(pid, file);
        ring_buffer__consume(ring_.get());
    }
}

void Tracer::sum_rss_exactly() const {
    if (!rss_iter_) return;
    UniqueFd fd(bpf_iter_create(bpf_link__fd(rss_iter_.get())));
    if (!fd) return;
    char buf[64];
    while (read(fd.get(), buf, sizeof buf) > 0) {
    }
}

KernelSnapshot Tracer::snapshot(bool with_ages) {
    sum_rss_exactly();
    KernelSnapshot k = reader_->read();
    if (with_ages) {
        k.blocks = reader_->block_ages();
        k.blocks_read = true;
    }
    k.mappings_recorded = mappings_;
    k.unwind_tables = dwarf_unwind_;
    if (unwind_) k.tables = unwind_->stats();
    k.probes = probe_count();
    k.kernel_bytes = kernel_bytes();
    k.python_processes = python_processes();
    k.py_sites = py_sites_;
    k.py_sites_skipped = py_sites_skipped_;
    return k;
}

size_t Tracer::python_processes() const {
    if (maps_.py_procs < 0) return 0;
    size_t n = 0;
    uint32_t key = 0, next = 0;
    for (uint32_t* prev = nullptr; bpf_map_get_next_key(maps_.py_procs, prev, &next) == 0; prev = &key) {
        key = next;
        n++;
    }
    return n;
}

bool Tracer::python_watched(int pid) const {
    if (maps_.py_procs < 0) return false;
    uint32_t key = static_cast<uint32_t>(pid);
    memtop_py_proc c;
    return bpf_map_lookup_elem(maps_.py_procs, &key, &c) == 0;
}

std::string Tracer::watch_python(int pid, const std::vector<Mapping>& maps, const std::string* in_process_refused,
                                 std::string* note) {
    // _PyRuntime's place in each candidate file, as memtop-cfi read it.
    auto runtime_offset = [&](const std::string& path, const Mapping& m) -> std::optional<uint64_t> {
        const FileSymbols* s = file_symbols(path, m.path);
        auto vaddr = s ? s->symbol("_PyRuntime") : std::nullopt;
        return vaddr ? s->file_offset(*vaddr) : std::nullopt;
    };
    auto t = find_python(maps, "/proc/" + std::to_string(pid) + "/root", runtime_offset);
    if (!t) return "";
    std::string who = "pid " + std::to_string(pid) + " runs " + t->module;
    if (!python_) return who + ": no Python frames in the compat BPF build (Linux 5.12 and older)";
    python_->add_process(pid, *t);
    py_modules_[pid] = t->module;
    if (!t->layout) return "";  // said once, in the report's notes
    const PythonLayout& l = *t->layout;
    memtop_py_proc c{};
    c.tstate_addr = t->runtime + l.runtime_tstate_current;
    c.tstate_cframe = l.tstate_cframe;
    c.tstate_thread = l.tstate_thread_id;
    c.cframe_current = l.cframe_current_frame;
    c.frame_code = l.frame_code;
    c.frame_previous = l.frame_previous;
    c.frame_instr = l.frame_prev_instr;
    c.frame_is_entry = l.frame_is_entry;
    c.frame_owner = l.frame_owner;
    c.owner_skip = l.owner_skip;
    uint32_t key = static_cast<uint32_t>(pid);
    if (bpf_map_update_elem(maps_.py_procs, &key, &c, BPF_ANY) != 0)
        return who + ": " + describe("record its Python layout", errno);
    // After the entry: each thread keeps its last py_procs answer until the
    // generation changes (python_process() in bpf/python_frames.h).
    uint32_t zero = 0, gen = ++py_procs_gen_;
    if (bpf_map_update_elem(maps_.py_procs_gen, &zero, &gen, BPF_ANY) != 0)
        return who + ": " + describe("announce its Python layout", errno);
    std::string said =
        who + " (CPython " + std::to_string(l.major) + "." + std::to_string(l.minor) + "): Python frames on";
    // The domain costs a trap per Python object (docs/design.md): asked for.
    std::string domain;
    if (python_objects_) {
        std::string module = "/proc/" + std::to_string(pid) + "/root" + t->module;
        std::string refused = in_process_refused ? *in_process_refused : "";
        // CPython's PyMem_SetAllocator, which the in-process sampler looks
        // up with dlsym: in the module's symbols (a CPython 3.4 or newer).
        const FileSymbols* symbols = in_process_refused && refused.empty() ? file_symbols(module, t->module) : nullptr;
        if (in_process_refused && refused.empty() && !(symbols && symbols->function("PyMem_SetAllocator")))
            refused = t->module + " exports no PyMem_SetAllocator for the sampler to hook";
        if (in_process_refused && refused.empty()) {
            // The sampler's two points, probed with its file, see every
            // sampled object: pymalloc's sites would count them again.
            if (note)
                *note = "pid " + std::to_string(pid) +
                        ": Python objects sampled in-process by memtop's preloaded sampler (pymalloc's sites not "
                        "probed)";
        } else {
            domain = attach_pymalloc(pid, module);
            // Sampled there (bpf/pymalloc.h) at the domain's rate, when
            // not --exact: still a trap per object, a walk per sampled one.
            if (in_process_refused && note)
                *note = "pid " + std::to_string(pid) + ": Python objects " +
                        (python_sample_bytes_ ? "sampled every " + std::to_string(python_sample_bytes_) + " bytes"
                                              : std::string("counted")) +
                        " at pymalloc's sites, a trap each (" + refused + ")";
        }
    }
    return said + (domain.empty() ? "" : "; " + domain);
}

std::string Tracer::hold_python_at_finalize(int pid) {
    const bpf_program* prog = nullptr;
    for (size_t i = 0; i < kProgramCount; i++)
        if (kPrograms[i].role == ProgramRole::PythonFinalize) prog = programs_[i];
    auto m = py_modules_.find(pid);
    if (!prog || maps_.py_hold < 0 || m == py_modules_.end() || !python_watched(pid)) return "";
    std::string open_path = "/proc/" + std::to_string(pid) + "/root" + m->second;
    struct stat st {};
    if (stat(open_path.c_str(), &st) != 0) return describe("stat " + m->second, errno);
    auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    if (!py_finalize_probed_.count(key)) {
        const FileSymbols* s = file_symbols(open_path, m->second);
        auto vaddr = s ? s->function("Py_FinalizeEx") : std::nullopt;
        auto offset = vaddr ? s->file_offset(*vaddr) : std::nullopt;
        if (!offset) return m->second + " defines no Py_FinalizeEx";
        // Every process of the file: the program keeps to py_hold's. Loaded
        // as the other uprobes are (a uprobe_multi program where they are).
        if (use_multi_) {
            int fd = attach_uprobe_multi(bpf_program__fd(prog), open_path, {*offset}, false, -1);
            if (fd < 0) return describe("attach a uprobe to Py_FinalizeEx in " + m->second, -fd);
            multi_links_.emplace_back(fd);
        } else {
            LIBBPF_OPTS(bpf_uprobe_opts, opts);
            LinkPtr l(
                bpf_program__attach_uprobe_opts(const_cast<bpf_program*>(prog), -1, open_path.c_str(), *offset, &opts));
            if (!l) return describe("attach a uprobe to Py_FinalizeEx in " + m->second, errno);
            links_.push_back(std::move(l));
        }
        py_finalize_probed_.insert(key);
    }
    uint32_t k = static_cast<uint32_t>(pid), armed = MEMTOP_PY_HOLD_ARMED;
    if (bpf_map_update_elem(maps_.py_hold, &k, &armed, BPF_ANY) != 0)
        return describe("arm the hold at Py_FinalizeEx", errno);
    return "";
}

bool Tracer::python_hold_fired(int pid) {
    if (maps_.py_hold < 0) return false;
    uint32_t k = static_cast<uint32_t>(pid), v = 0;
    if (bpf_map_lookup_elem(maps_.py_hold, &k, &v) != 0 || v != MEMTOP_PY_HOLD_SENT) return false;
    bpf_map_delete_elem(maps_.py_hold, &k);
    return true;
}

std::string Tracer::attach_pymalloc(int pid, const std::string& path) {
    size_t site = 0, ret = 0;
    for (size_t i = 0; i < kProgramCount; i++) {
        if (std::strcmp(kPrograms[i].name, "py_site") == 0) site = i;
        if (std::strcmp(kPrograms[i].name, "py_new_pool_return") == 0) ret = i;
    }
    if (!programs_[site] || !programs_[ret]) return "no Python-domain counts: they need uprobe_multi links (Linux 6.6)";
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return "no Python-domain counts: " + describe("stat " + path, errno);
    auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    auto it = pymalloc_plans_.find(key);
    if (it == pymalloc_plans_.end()) {
        // Parsed by memtop-cfi, unprivileged (cfi_worker.h).
        PlacementResult planned = cfi_worker_.plan_file(path, path, PlanKind::Pymalloc);
        PymallocProbes pr;
        if (planned.error.empty())
            pr = pymalloc_probes(planned.plan);
        else
            pr.problem = planned.error;
        it = pymalloc_plans_.emplace(key, std::move(pr)).first;
    }
    const PymallocProbes& pr = it->second;
    if (!pr.problem.empty()) return "no Python-domain counts: " + pr.problem;
    int a = attach_uprobe_multi(bpf_program__fd(programs_[site]), path, pr.offsets, false, pid, false, &pr.cookies);
    if (a < 0) return "no Python-domain counts: " + describe("probe pymalloc's sites", -a);
    // With sessions its entry decides whether the return is trapped.
    int b = attach_uprobe_multi(bpf_program__fd(programs_[ret]), path, {pr.new_pool_offset}, !use_session_, pid,
                                use_session_);
    if (b < 0) {
        close(a);
        return "no Python-domain counts: " + describe("probe allocate_from_new_pool", -b);
    }
    multi_links_.emplace_back(a);
    multi_links_.emplace_back(b);
    py_sites_ = pr.sites;
    py_sites_skipped_ = pr.skipped;
    std::string said = "Python domain on (" + std::to_string(pr.sites) + " pymalloc sites";
    if (pr.skipped) said += ", " + std::to_string(pr.skipped) + " skipped: " + pr.skipped_why;
    return said + ")";
}

void Tracer::watch_target(int pid, bool on) {
    uint32_t key = static_cast<uint32_t>(pid), one = 1;
    if (maps_.targets < 0) return;
    if (on)
        bpf_map_update_elem(maps_.targets, &key, &one, BPF_ANY);
    else
        bpf_map_delete_elem(maps_.targets, &key);
}

void Tracer::forget(const std::vector<EndedInstance>& instances) {
    purge_instances(maps_, instances);
}

}  // namespace memtop
