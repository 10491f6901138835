#include "app/proc_facts.h"

#include "procinfo/meminfo.h"
#include "procinfo/proc_status.h"
#include "procinfo/processes.h"

namespace memtop {

std::vector<uint32_t> ProcFacts::live_pids() {
    std::vector<uint32_t> out;
    for (int pid : list_pids()) out.push_back(static_cast<uint32_t>(pid));
    return out;
}

std::optional<RssStats> ProcFacts::resident(uint32_t pid) {
    auto st = read_proc_status(static_cast<int>(pid), nullptr);
    if (!st || (st->vm_rss == 0 && st->rss_anon == 0 && st->rss_file == 0)) return std::nullopt;  // kernel thread
    RssStats r;
    r.anon = st->rss_anon;
    r.file = st->rss_file;
    r.shmem = st->rss_shmem;
    r.swap = st->vm_swap;
    return r;
}

ProcessIdentity ProcFacts::identity(uint32_t pid) {
    return read_identity(static_cast<int>(pid));
}

std::string ProcFacts::comm(uint32_t pid) {
    return comm_of(static_cast<int>(pid));
}

std::optional<MemInfo> ProcFacts::host_memory() {
    return read_meminfo(nullptr);
}

}  // namespace memtop
