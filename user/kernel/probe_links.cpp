// Allocator probes on one file: one link per program (uprobe_multi, 6.6+)
// or one perf-event uprobe per site, with the pid filter of the target.
#include <bpf/libbpf.h>

#include <cstdio>
#include <map>

#include "kernel/libbpf_log.h"
#include "kernel/tracer.h"
#include "kernel/uprobe_multi.h"
#include "util/errors.h"

namespace memtop {

const AttachedLibrary& Tracer::attach_library(const std::string& open_path, const std::string& shown_path, int pid) {
    auto image = ElfImage::open(open_path);
    AttachedLibrary lib{shown_path, pid, plan_probes(*image), 0};
    std::string who = pid < 0 ? "all processes" : "pid " + std::to_string(pid);

    auto program_of = [&](ProgramRole role, ProbeProgram entry) -> bpf_program* {
        for (size_t i = 0; i < kProgramCount; i++)
            if (kPrograms[i].role == role && (role != ProgramRole::AllocatorEntry || kPrograms[i].entry == entry))
                return programs_[i];
        return nullptr;
    };
    // Sites per program: entry programs by argument layout, one return
    // program for every allocation.
    std::map<bpf_program*, std::vector<const ProbeSite*>> groups;
    bpf_program* ret_prog = program_of(ProgramRole::AllocatorReturn, {});
    for (const auto& site : lib.sites) {
        if (!site.forwards_to.empty()) continue;
        groups[program_of(ProgramRole::AllocatorEntry, site.program)].push_back(&site);
        if (site.has_return) groups[ret_prog].push_back(&site);
    }
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
    for (const auto& [prog, sites] : groups) {
        bool ret = prog == ret_prog;
        if (use_multi_) {
            std::vector<uint64_t> offsets;
            for (const auto* s : sites) offsets.push_back(s->file_offset);
            int fd = attach_uprobe_multi(bpf_program__fd(prog), open_path, offsets, ret, pid);
            if (fd < 0) fail(*sites.front(), ret, fd);
            multi.emplace_back(fd);
            lib.links += offsets.size();
            continue;
        }
        for (const auto* s : sites) {
            LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
            LinkPtr l(bpf_program__attach_uprobe_opts(prog, pid, open_path.c_str(), s->file_offset, &opts));
            if (!l) fail(*s, ret, errno);
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
