// Allocator probes on one file: one link per program (uprobe_multi, 6.6+)
// or one perf-event uprobe per site, with the pid filter of the target.
#include <bpf/libbpf.h>
#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "kernel/libbpf_log.h"
#include "kernel/tracer.h"
#include "kernel/uprobe_multi.h"
#include "memtop.h"
#include "util/errors.h"

namespace memtop {

namespace {

// The attach cookie of alloc_entry or op_new_entry (bpf/heap.h) for a probe
// of `entry`; 0: neither serves it.
uint64_t entry_cookie(ProbeProgram entry) {
    switch (entry) {
        case ProbeProgram::NewEntry:
            return MEMTOP_ENTRY_NEW;
        case ProbeProgram::NewOwnEntry:
            return MEMTOP_ENTRY_NEW_OWN;
        case ProbeProgram::NewNOwnEntry:
            return MEMTOP_ENTRY_NEW_N_OWN;
        case ProbeProgram::MallocEntry:
            return MEMTOP_ENTRY_MALLOC;
        case ProbeProgram::CallocEntry:
            return MEMTOP_ENTRY_CALLOC;
        case ProbeProgram::ReallocEntry:
            return MEMTOP_ENTRY_REALLOC;
        case ProbeProgram::ReallocarrayEntry:
            return MEMTOP_ENTRY_REALLOCARRAY;
        case ProbeProgram::MemalignEntry:
            return MEMTOP_ENTRY_MEMALIGN;
        case ProbeProgram::PosixMemalignEntry:
            return MEMTOP_ENTRY_POSIX_MEMALIGN;
        default:
            return 0;
    }
}

}  // namespace

const FileSymbols* Tracer::file_symbols(const std::string& open_path, const std::string& shown, bool* failed) {
    if (failed) *failed = false;
    struct stat st {};
    if (::stat(open_path.c_str(), &st) != 0) return nullptr;  // gone: nothing to read
    const std::pair<uint64_t, uint64_t> file{st.st_dev, st.st_ino};
    if (placement_failed_.count(file)) {  // said when it failed
        if (failed) *failed = true;
        return nullptr;
    }
    auto it = file_symbols_.find(file);
    if (it == file_symbols_.end()) {
        // Parsed by memtop-cfi, unprivileged (cfi_worker.h); the answer
        // comes back checked.
        SymbolsResult got = cfi_worker_.symbols_file(open_path, shown);
        if (got.worker_failed) {
            // This file only: the others are read by a new worker.
            fprintf(stderr, "memtop: symbols of %s: %s; if it defines an allocator, its allocations are not traced\n",
                    shown.c_str(), got.error.c_str());
            placement_failed_.insert(file);
            if (failed) *failed = true;
            return nullptr;
        }
        std::optional<FileSymbols> answer;
        if (got.error.empty()) answer = std::move(got.symbols);  // else not ELF: not a file to probe
        it = file_symbols_.emplace(file, std::move(answer)).first;
    }
    return it->second ? &*it->second : nullptr;
}

const AttachedLibrary& Tracer::attach_library(const std::string& open_path, const std::string& shown_path, int pid) {
    std::string who = pid < 0 ? "all processes" : "pid " + std::to_string(pid);
    // The file is parsed by memtop-cfi, unprivileged (cfi_worker.h); its
    // plan comes back checked: every offset in the file's code.
    struct stat st {};
    const bool known = ::stat(open_path.c_str(), &st) == 0;
    const std::pair<uint64_t, uint64_t> file{st.st_dev, st.st_ino};
    not_placed_ = AttachedLibrary{shown_path, pid, {}, 0, {}};
    if (known && placement_failed_.count(file)) return not_placed_;  // said when it failed
    PlacementResult planned = cfi_worker_.plan_file(open_path, shown_path, PlanKind::Probes);
    if (planned.worker_failed) {
        // This file only: its allocations are not traced, the others' are.
        fprintf(stderr, "memtop: probes for %s: %s; its allocations are not traced\n", shown_path.c_str(),
                planned.error.c_str());
        if (known) placement_failed_.insert(file);
        return not_placed_;
    }
    if (!planned.error.empty()) throw MemtopError(kExitAttach, planned.error);
    AttachedLibrary lib{shown_path, pid, std::move(planned.plan.sites), 0, {}};

    auto spec_of = [&](ProgramRole role, ProbeProgram entry) -> size_t {
        for (size_t i = 0; i < kProgramCount; i++)
            if (kPrograms[i].role == role && (role != ProgramRole::AllocatorEntry || kPrograms[i].entry == entry))
                return i;
        return kProgramCount;
    };
    auto program_of = [&](ProgramRole role, ProbeProgram entry) -> bpf_program* {
        size_t i = spec_of(role, entry);
        return i < kProgramCount ? programs_[i] : nullptr;
    };
    // The programs that serve several entries by cookie, where loaded.
    bpf_program *entries_prog = nullptr, *new_entries_prog = nullptr;
    for (size_t i = 0; i < kProgramCount; i++) {
        if (kPrograms[i].role == ProgramRole::AllocatorEntries) entries_prog = programs_[i];
        if (kPrograms[i].role == ProgramRole::NewEntries) new_entries_prog = programs_[i];
    }
    auto by_cookie = [&](ProbeProgram entry) -> bpf_program* {
        if (!entry_cookie(entry)) return nullptr;
        bool is_new = entry == ProbeProgram::NewEntry || entry == ProbeProgram::NewOwnEntry ||
                      entry == ProbeProgram::NewNOwnEntry;
        return is_new ? new_entries_prog : entries_prog;
    };
    // Uprobe sessions: the entry program takes the return too.
    auto is_session = [&](ProbeProgram entry) {
        size_t i = spec_of(ProgramRole::AllocatorEntry, entry);
        return use_session_ && i < kProgramCount && session_entry(kPrograms[i]);
    };
    // Sites per program: entry programs by argument layout, one return
    // program for every allocation.
    std::map<bpf_program*, std::vector<const ProbeSite*>> groups;
    bpf_program* ret_prog = program_of(ProgramRole::AllocatorReturn, {});
    // operator new's ret instructions (NewOwnEntry): one probe per address,
    // whichever variants share it. Attached as entry probes at those offsets.
    bpf_program* ret_site_prog = program_of(ProgramRole::AllocatorRetSite, {});
    std::map<uint64_t, const ProbeSite*> ret_sites;
    // The mimalloc object's programs load at the first file that needs them.
    std::vector<bool> wanted(kProgramCount, false);
    bool wants_mimalloc = false;
    for (const auto& site : lib.sites) {
        size_t i = spec_of(ProgramRole::AllocatorEntry, site.program);
        if (site.forwards_to.empty() && site.not_traced.empty() && i < kProgramCount && on_demand(kPrograms[i].needs))
            wants_mimalloc = wanted[i] = true;
    }
    const std::string& mimalloc_why = wants_mimalloc ? load_mimalloc(wanted) : mimalloc_error_;
    bpf_program* mi_ret_prog = program_of(ProgramRole::MimallocReturn, {});
    std::map<std::string, std::vector<std::string>> no_program;  // why not -> sites whose program is not loaded
    for (const auto& site : lib.sites) {
        if (!site.forwards_to.empty()) continue;
        if (!site.not_traced.empty()) {
            lib.not_traced.push_back(site.symbol + ": " + site.not_traced);
            continue;
        }
        bpf_program* prog = program_of(ProgramRole::AllocatorEntry, site.program);
        if (!prog) prog = by_cookie(site.program);
        size_t spec = spec_of(ProgramRole::AllocatorEntry, site.program);
        // The sampler's Python-domain points: probed with --python-objects only.
        if (!prog && spec < kProgramCount && kPrograms[spec].needs == ProgramNeeds::PythonSampled) continue;
        if (!prog) {
            // mimalloc's heap API: counted only where mi_heap_destroy can
            // free a heap's blocks (docs/limits.md).
            no_program[!mimalloc_why.empty() ? mimalloc_why
                                             : "counted exactly only with bpf_for_each_map_elem (Linux 5.13) "
                                               "(mimalloc's heap API: mi_heap_destroy frees a heap's blocks at once)"]
                .push_back(site.symbol);
            continue;
        }
        size_t i = spec_of(ProgramRole::AllocatorEntry, site.program);
        groups[prog].push_back(&site);
        bpf_program* ret = on_demand(kPrograms[i].needs) ? mi_ret_prog : ret_prog;
        if (site.has_return && !is_session(site.program)) groups[ret].push_back(&site);
        for (uint64_t off : site.return_sites) ret_sites.emplace(off, &site);
    }
    for (const auto& [why, symbols] : no_program)
        lib.not_traced.push_back(
            symbols.front() +
            (symbols.size() > 1 ? " and " + std::to_string(symbols.size() - 1) + " more functions" : "") + ": " + why);
    if (groups.empty())
        throw MemtopError(kExitAttach, "attach to " + shown_path + " (" + who +
                                           "): it defines none of the allocator functions memtop traces "
                                           "(malloc, free, operator new, ...)");

    // Made here and kept only when every probe of the file is on.
    std::vector<LinkPtr> links;
    std::vector<UniqueFd> multi;
    auto fail = [&](const ProbeSite& site, bool ret, int err) {
        destroy_links(links);
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
    // (program, is return probe, offsets, the site each offset is for, and
    // the cookies of a program that serves several entries, one per offset)
    struct Group {
        bpf_program* prog;
        bool ret;
        std::vector<uint64_t> offsets;
        std::vector<const ProbeSite*> sites;
        bool session = false;
        std::vector<uint64_t> cookies;
    };
    std::vector<Group> plan;
    for (const auto& [prog, sites] : groups) {
        bool ret = prog == ret_prog || prog == mi_ret_prog;
        Group g{prog, ret, {}, sites, !ret && is_session(sites.front()->program), {}};
        for (const auto* s : sites) {
            g.offsets.push_back(s->file_offset);
            if (prog == entries_prog || prog == new_entries_prog) g.cookies.push_back(entry_cookie(s->program));
        }
        plan.push_back(std::move(g));
    }
    if (!ret_sites.empty()) {
        Group g{ret_site_prog, false, {}, {}, false, {}};
        for (const auto& [off, site] : ret_sites) {
            g.offsets.push_back(off);
            g.sites.push_back(site);
        }
        plan.push_back(std::move(g));
    }
    for (const auto& g : plan) {
        if (use_multi_) {
            int fd = attach_uprobe_multi(bpf_program__fd(g.prog), open_path, g.offsets, g.ret, pid, g.session,
                                         g.cookies.empty() ? nullptr : &g.cookies);
            if (fd < 0) fail(*g.sites.front(), g.ret, fd);
            multi.emplace_back(fd);
            lib.links += g.offsets.size();
            continue;
        }
        for (size_t i = 0; i < g.offsets.size(); i++) {
            LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = g.cookies.empty() ? 0 : g.cookies[i], .retprobe = g.ret);
            LinkPtr l(bpf_program__attach_uprobe_opts(g.prog, pid, open_path.c_str(), g.offsets[i], &opts));
            if (!l) fail(*g.sites[i], g.ret, errno);
            links.push_back(std::move(l));
            lib.links++;
        }
    }
    for (auto& l : links) links_.push_back(std::move(l));
    for (auto& fd : multi) multi_links_.push_back(std::move(fd));
    libraries_.push_back(std::move(lib));
    return libraries_.back();
}

size_t Tracer::probe_count() const {
    size_t n = 0;
    for (const auto& l : libraries_) n += l.links;
    return n;
}

}  // namespace memtop
