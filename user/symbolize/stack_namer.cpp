#include "symbolize/stack_namer.h"

#include <signal.h>

#include <cerrno>
#include <cstdint>

#include "symbolize/lines.h"

namespace memtop {

namespace {
// No user mapping lies at or above it (x86-64's canonical kernel half).
constexpr uint64_t kKernelAddressStart = 0xffff800000000000ULL;

bool alive(uint32_t pid) {
    return kill(static_cast<int>(pid), 0) == 0 || errno == EPERM;
}
}  // namespace

void StackNamer::snapshot(uint32_t pid, uint32_t epoch) {
    // Epoch 0 is no heap instance (a growth or mapping stack, keyed by pid):
    // the maps it reads are those of the image a kept snapshot was taken
    // for (an exec erases that, exec()), so the snapshot keeps its instance.
    // Relabelled 0, a heap instance's stacks found no maps once the process
    // had ended: a mapping stack's event read after -- CMD's exit stop
    // undid the exit stop's snapshot.
    if (auto old = maps_.find(pid); old != maps_.end()) {
        if (epoch == 0) epoch = old->second.epoch;
        // Epochs only grow: an event of an earlier instance read late (the
        // ring buffer behind an exec, a pid reused) would read the maps of
        // a later one. Labelled with the earlier epoch, they replaced the
        // later instance's snapshot, which the exec event then dropped: a
        // `-- WRAPPER` that exec'd a short program lost every frame's name.
        else if (old->second.epoch > epoch)
            return;
    }
    maps_reads_++;
    auto maps = read_proc_maps(static_cast<int>(pid), nullptr);
    // Already gone: keep the last snapshot. A zombie (exited, not yet
    // reaped) reads as a process with no mappings at all; taking that would
    // throw away the snapshot of its exit stop, and a final report read
    // late (a busy host, a slow guest) named none of its frames.
    if (!maps || maps->empty()) return;
    const auto now = Clock::now();
    maps_[pid] = {epoch, std::move(*maps), now, false, now};
    // JIT code is named by the process's perf map: read it (what was
    // appended to it) now, while the process and the file exist. A JIT may
    // remove it at exit, before the final report.
    symbolizer_.refresh_perf_map(static_cast<int>(pid));
}

void StackNamer::stack_stored(uint32_t pid, uint32_t epoch, const std::function<const RawStack*()>& frames) {
    auto it = maps_.find(pid);
    // Epoch 0 (a growth or mapping stack) is named with any snapshot of the pid.
    if (it == maps_.end() || (epoch != 0 && it->second.epoch != epoch)) return snapshot(pid, epoch);
    MapsSnapshot& kept = it->second;
    const auto now = Clock::now();
    const RawStack* stack = frames ? frames() : nullptr;
    if (!stack) {
        // Nothing to check the snapshot against: a recent one will do.
        if (now - kept.taken > kRereadInterval) snapshot(pid, epoch);
        return;
    }
    bool outside = false, jit = false;
    for (uint64_t ip : stack->ips) {
        if (ip >= kKernelAddressStart) continue;
        // A return address may sit one past its call at a mapping's end.
        const Mapping* m = find_mapping(kept.maps, ip);
        if (!m && ip) m = find_mapping(kept.maps, ip - 1);
        if (!m) {
            outside = true;
            break;
        }
        if (m->ino == 0 && (m->path.empty() || m->path.rfind("[anon", 0) == 0)) jit = true;
    }
    if (outside) {
        // The first miss since a read is answered at once (a library just
        // loaded); further ones at most every kRereadInterval.
        if (!kept.for_miss || now - kept.taken > kRereadInterval) {
            snapshot(pid, epoch);
            if (auto again = maps_.find(pid); again != maps_.end()) again->second.for_miss = true;
        }
        return;
    }
    if (jit && now - kept.perf_map_read > kRereadInterval) {
        kept.perf_map_read = now;
        symbolizer_.refresh_perf_map(static_cast<int>(pid));
    }
}

void StackNamer::exec(uint32_t pid, uint32_t old_epoch) {
    auto m = maps_.find(pid);
    // Under load the ring buffer is read late: a short CMD can exec, run,
    // stop at its exit (where its maps were read) before this event is
    // read. Erasing that snapshot left the final report unnamed.
    if (m != maps_.end() && m->second.epoch != 0 && m->second.epoch != old_epoch) return;
    if (m != maps_.end()) maps_.erase(m);
    symbolizer_.forget_process(static_cast<int>(pid));  // the old image's JIT is gone too
    forget_named(pid, old_epoch);
}

void StackNamer::forget(uint32_t pid, uint32_t epoch) {
    auto m = maps_.find(pid);
    if (m != maps_.end() && m->second.epoch == epoch) maps_.erase(m);
    symbolizer_.forget_process(static_cast<int>(pid));
    forget_named(pid, epoch);
}

void StackNamer::forget_named(uint32_t pid, uint32_t epoch) {
    named_.erase(named_.lower_bound({pid, epoch, 0}), named_.upper_bound({pid, epoch, UINT64_MAX}));
}

const std::vector<Mapping>* StackNamer::maps_for(uint32_t pid, uint32_t epoch) {
    auto m = maps_.find(pid);
    bool current = m != maps_.end() && (m->second.epoch == epoch || epoch == 0);
    if (!current && alive(pid)) {
        snapshot(pid, epoch);
        m = maps_.find(pid);
        current = m != maps_.end() && m->second.epoch == epoch;
    }
    if (current) return &m->second.maps;
    note_no_maps(pid, epoch);
    return nullptr;
}

void StackNamer::note_no_maps(uint32_t pid, uint32_t epoch) {
    auto key = std::make_pair(pid, epoch);
    if (no_maps_.count(key)) return;
    std::string why = "not read: the process ended before memtop read its maps";
    if (auto m = maps_.find(pid); m != maps_.end())
        why = "not read for instance " + std::to_string(epoch) +
              ": it exec'd or ended; the maps kept are of instance " + std::to_string(m->second.epoch);
    else if (alive(static_cast<uint32_t>(pid)))
        why = "not readable: the process lives but its maps read empty (exiting, or a kernel thread)";
    no_maps_[key] = std::move(why);
}

void StackNamer::name_heap_stack(ReportStack& s) {
    const auto key = std::make_tuple(s.stats.pid, s.stats.epoch, s.stats.stack_id);
    if (auto it = named_.find(key); it != named_.end() && s.stats.stack_id) {
        s.frames = it->second;
        return;
    }
    name_stack(s, AddressKind::Return);
    bool in_files = !s.frames.empty() && s.stats.stack_id;
    // Kept only when every frame is named for good: a file-backed native
    // frame, or a Python frame whose code object was read.
    for (const auto& f : s.frames)
        in_files &= f.kind == FrameKind::Python ? f.function.has_value()
                                                : f.module && !f.module->empty() && (*f.module)[0] != '[';
    if (in_files) named_[key] = s.frames;
}

const std::vector<Mapping>* StackNamer::maps_covering(const ReportStack& s, bool any_instance) {
    if (!any_instance) return maps_for(s.stats.pid, s.stats.epoch);
    const auto* maps = maps_for(s.stats.pid, 0);
    if (!maps) return nullptr;
    // Any snapshot of the pid may be older than the stack (taken at the
    // process's first growth stack, before its libraries were mapped): read
    // again for a frame outside it, once per report and process.
    for (uint64_t ip : s.ips) {
        if (ip >= kKernelAddressStart || find_mapping(*maps, ip) || (ip && find_mapping(*maps, ip - 1))) continue;
        if (reread_.insert(s.stats.pid).second && alive(s.stats.pid)) {
            snapshot(s.stats.pid, 0);
            maps = maps_for(s.stats.pid, 0);
        }
        break;
    }
    return maps;
}

void StackNamer::name_stack(ReportStack& s, AddressKind first, bool any_instance) {
    if (s.ips.empty()) return;
    if (const auto* maps = maps_covering(s, any_instance)) {
        s.frames = symbolizer_.resolve_stack(static_cast<int>(s.stats.pid), *maps, s.ips, first);
    } else {
        s.frames.clear();
        for (auto ip : s.ips) {
            Frame f;
            f.address = ip;
            s.frames.push_back(f);
        }
    }
    // Heap stacks of a CPython, and its Python-domain stacks (walked from
    // inside the interpreter: Exact): the interpreter's frames in place of
    // its evaluation loop's. Growth and mapping stacks have no Python
    // frames stored under their ids.
    if (python_ && s.stats.stack_id)
        if (const auto* py = python_->frames(s.stats.pid, s.stats.stack_id))
            s.frames = merge_python_frames(s.frames, *py);
}

void StackNamer::name(Report& r) {
    (void)symbolizer_.take_file_notes();  // only what this report's frames meet
    no_maps_.clear();
    reread_.clear();
    if (named_.size() > (1u << 20)) named_.clear();  // a bound: named again when met
    // Every address the report names, asked of the worker in one batch per
    // file rather than one round trip per stack and file; heap stacks named
    // in an earlier report are not asked again.
    auto prefetch = [&](const std::vector<ReportStack>& stacks, AddressKind first, bool heap,
                        bool any_instance = false) {
        for (const auto& s : stacks) {
            if (s.ips.empty()) continue;
            if (heap && s.stats.stack_id && named_.count(std::make_tuple(s.stats.pid, s.stats.epoch, s.stats.stack_id)))
                continue;
            if (const auto* maps = maps_covering(s, any_instance))
                symbolizer_.prefetch(static_cast<int>(s.stats.pid), *maps, s.ips, first);
        }
    };
    prefetch(r.stacks, AddressKind::Return, true);
    prefetch(r.all_stacks, AddressKind::Return, true);
    // A growth or mapping stack's epoch is its address space's id
    // (bpf/growth.h, bpf/mappings.h), no heap instance: any snapshot of the
    // pid names it. Taken for an instance, it relabelled the snapshot, and
    // the heap stacks of a -p target went unnamed.
    prefetch(r.growth_stacks, AddressKind::Exact, false, true);
    prefetch(r.mappings, AddressKind::Exact, false, true);
    prefetch(r.python_stacks, AddressKind::Exact, false);
    prefetch(r.all_python_stacks, AddressKind::Exact, false);
    if (r.lines) prefetch(r.line_stacks, AddressKind::Return, false);
    symbolizer_.flush_prefetched();
    for (auto& s : r.stacks) name_heap_stack(s);
    for (auto& s : r.all_stacks) name_heap_stack(s);
    for (auto& s : r.growth_stacks) name_stack(s, AddressKind::Exact, true);
    for (auto& s : r.mappings) name_stack(s, AddressKind::Exact, true);
    for (auto& s : r.python_stacks) name_stack(s, AddressKind::Exact);
    // Every Python-domain stack (file exports, recordings): named at each
    // report as the top ones are (no cache: they are few beside the heap's).
    for (auto& s : r.all_python_stacks) name_stack(s, AddressKind::Exact);
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
    // A busy host's system view meets many processes that ended unread:
    // a few are named, the rest counted in one line.
    constexpr size_t kNamed = 8;
    size_t n = 0;
    for (auto& [key, why] : no_maps_)
        if (n++ < kNamed) r.symbol_files.push_back({"/proc/" + std::to_string(key.first) + "/maps", std::move(why)});
    if (n > kNamed)
        r.symbol_files.push_back({"/proc/*/maps", "not read for " + std::to_string(n - kNamed) +
                                                      " more process instances: they ended before memtop read them"});
    no_maps_.clear();
    if (python_)
        for (auto& n : python_->take_notes()) python_notes_.push_back(std::move(n));
    r.python_notes = python_notes_;
    r.perf_maps.clear();
    for (const auto& p : r.processes)
        if (auto note = symbolizer_.perf_map_note(static_cast<int>(p.pid))) r.perf_maps.push_back(std::move(*note));
    // A file no report of the last three needed is unloaded from the
    // worker: its names stay cached, a new address loads it again.
    symbolizer_.release_idle(3);
}

}  // namespace memtop
