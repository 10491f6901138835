#include "symbolize/stack_namer.h"

#include <signal.h>

#include <cerrno>

#include "symbolize/lines.h"

namespace memtop {

namespace {
bool alive(uint32_t pid) {
    return kill(static_cast<int>(pid), 0) == 0 || errno == EPERM;
}
}  // namespace

void StackNamer::snapshot(uint32_t pid, uint32_t epoch) {
    auto maps = read_proc_maps(static_cast<int>(pid), nullptr);
    // Already gone: keep the last snapshot. A zombie (exited, not yet
    // reaped) reads as a process with no mappings at all; taking that would
    // throw away the snapshot of its exit stop, and a final report read
    // late (a busy host, a slow guest) named none of its frames.
    if (!maps || maps->empty()) return;
    maps_[pid] = {epoch, std::move(*maps), Clock::now()};
    // JIT code is named by the process's perf map: read it (what was
    // appended to it) now, while the process and the file exist. A JIT may
    // remove it at exit, before the final report.
    symbolizer_.refresh_perf_map(static_cast<int>(pid));
}

void StackNamer::stack_stored(uint32_t pid, uint32_t epoch) {
    auto it = maps_.find(pid);
    if (it == maps_.end() || it->second.epoch != epoch ||
        Clock::now() - it->second.taken > std::chrono::milliseconds(100))
        snapshot(pid, epoch);
}

void StackNamer::exec(uint32_t pid, uint32_t old_epoch) {
    auto m = maps_.find(pid);
    // Under load the ring buffer is read late: a short CMD can exec, run,
    // stop at its exit (where its maps were read) before this event is
    // read. Erasing that snapshot left the final report unnamed.
    if (m != maps_.end() && m->second.epoch != 0 && m->second.epoch != old_epoch) return;
    if (m != maps_.end()) maps_.erase(m);
    symbolizer_.forget_process(static_cast<int>(pid));  // the old image's JIT is gone too
}

void StackNamer::forget(uint32_t pid, uint32_t epoch) {
    auto m = maps_.find(pid);
    if (m != maps_.end() && m->second.epoch == epoch) maps_.erase(m);
    symbolizer_.forget_process(static_cast<int>(pid));
}

const std::vector<Mapping>* StackNamer::maps_for(uint32_t pid, uint32_t epoch) {
    auto m = maps_.find(pid);
    bool current = m != maps_.end() && (m->second.epoch == epoch || epoch == 0);
    if (!current && alive(pid)) {
        snapshot(pid, epoch);
        m = maps_.find(pid);
        current = m != maps_.end();
    }
    return current ? &m->second.maps : nullptr;
}

void StackNamer::name_stack(ReportStack& s, AddressKind first) {
    if (s.ips.empty()) return;
    if (const auto* maps = maps_for(s.stats.pid, s.stats.epoch)) {
        s.frames = symbolizer_.resolve_stack(static_cast<int>(s.stats.pid), *maps, s.ips, first);
        return;
    }
    s.frames.clear();
    for (auto ip : s.ips) {
        Frame f;
        f.address = ip;
        s.frames.push_back(f);
    }
}

void StackNamer::name(Report& r) {
    (void)symbolizer_.take_file_notes();  // only what this report's frames meet
    for (auto& s : r.stacks) name_stack(s, AddressKind::Return);
    for (auto& s : r.all_stacks) name_stack(s, AddressKind::Return);
    for (auto& s : r.growth_stacks) name_stack(s, AddressKind::Exact);
    for (auto& s : r.mappings) name_stack(s, AddressKind::Exact);
    if (r.lines) {
        for (auto& s : r.line_stacks) {
            name_stack(s, AddressKind::Return);
            add_stack_lines(*r.lines, s.stats, s.frames);
        }
        r.line_stacks.clear();
    }
    // Where each incomplete stack stopped: the module of its last frame.
    for (const auto& [pid, ip] : r.unwind.incomplete_ends) {
        std::string module = "?";
        auto m = maps_.find(pid);
        if (m != maps_.end())
            if (const Mapping* mp = find_mapping(m->second.maps, ip))
                module = mp->path.empty() ? "[anonymous]" : mp->path;
        r.unwind.incomplete_by_module[module]++;
    }
    r.unwind.incomplete_ends.clear();
    // What became of each reported process's perf map, said in the report
    // whether it was used, refused or used in part.
    r.symbol_files = symbolizer_.take_file_notes();
    r.perf_maps.clear();
    for (const auto& p : r.processes)
        if (auto note = symbolizer_.perf_map_note(static_cast<int>(p.pid))) r.perf_maps.push_back(std::move(*note));
}

}  // namespace memtop
