// Symbolization of a report: every stack's addresses named in one pass,
// after aggregation, with the maps of each process as they were when its
// stacks were stored (a process may be gone by report time). Also where
// incomplete stacks stopped (by module), and the --lines listing, which
// needs the named frames of every stack.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "model/report.h"
#include "procinfo/proc_maps.h"
#include "python/python_frames.h"
#include "symbolize/symbolizer.h"

namespace memtop {

class StackNamer {
public:
    // A stack of this process instance was stored: make sure the maps kept
    // of it cover its frames while it lives. `frames` reads the stack (null
    // when it cannot be read); it is asked only when a snapshot of this
    // instance is kept, and the maps are read again only when one of its
    // frames lies outside every mapping of that snapshot (a library loaded
    // since, new JIT code): a compiler on a busy host stores new stacks all
    // the time, and reading its maps for each (every 100 ms, as memtop
    // did) was half of memtop's CPU watching a build. A frame in
    // anonymous executable memory re-reads the process's perf map.
    void stack_stored(uint32_t pid, uint32_t epoch, const std::function<const RawStack*()>& frames = {});
    // The process is about to end with its memory still mapped (-- CMD's
    // exit stop): the last chance to read its maps.
    void snapshot(uint32_t pid, uint32_t epoch);
    // The process exec'd: the old image's maps and JIT names are gone.
    // old_epoch: the old image's heap instance (0: it had none). A snapshot
    // of a newer heap instance is the new image's and is kept: the exec
    // event may be read after the new image ran, and exited.
    void exec(uint32_t pid, uint32_t old_epoch);
    // The instance's final numbers were reported: drop what is kept of it.
    void forget(uint32_t pid, uint32_t epoch);
    // memtop-symbols, the symbolization worker (0: none runs).
    pid_t symbolizer_worker_pid() const { return symbolizer_.worker_pid(); }
    // How often /proc/PID/maps was read (a measure of the cost above).
    uint64_t maps_reads() const { return maps_reads_; }
    // Where heap stacks' Python frames come from (null: none).
    void set_python(PythonFrames* python) { python_ = python; }

    // Names every stack of `r`, fills the unwind summary's modules and
    // r.perf_maps, and builds the line listing from r.line_stacks (then
    // drops them).
    void name(Report& r);

private:
    using Clock = std::chrono::steady_clock;
    struct MapsSnapshot {
        uint32_t epoch = 0;
        std::vector<Mapping> maps;
        Clock::time_point taken;
        bool for_miss = false;            // read because a frame was outside the snapshot before
        Clock::time_point perf_map_read;  // when the perf map was last read for a JIT frame
    };
    // Reads again at most this often for frames the maps do not explain
    // (a garbage frame from a frame-pointer walk is outside them all).
    static constexpr std::chrono::milliseconds kRereadInterval{100};
    // The maps to name a stack of (pid, epoch) with; epoch 0 (no heap
    // instance: a growth or mapping stack) takes any snapshot of the pid. Null when none can be
    // had (the process is gone and none was taken).
    const std::vector<Mapping>* maps_for(uint32_t pid, uint32_t epoch);
    // any_instance: named with whichever snapshot of its pid is kept (a
    // growth or mapping stack, whose epoch is an address space's id).
    void name_stack(ReportStack& s, AddressKind first, bool any_instance = false);
    // The maps to name s with (maps_for); any_instance: read again when a
    // frame lies outside the snapshot kept (once per report and process).
    const std::vector<Mapping>* maps_covering(const ReportStack& s, bool any_instance);
    std::set<uint32_t> reread_;  // processes read again by maps_covering in this report
    // A heap stack's frames, named once per (pid, epoch, stack id): a stored
    // stack never changes, nor do the files its frames are in while the
    // instance lives, so every report after the first (each one carries
    // every stack under --record) reuses them. Frames in no file (JIT code,
    // named by a perf map that may grow) are named each time.
    void name_heap_stack(ReportStack& s);
    void forget_named(uint32_t pid, uint32_t epoch);
    // Why maps_for found no maps for (pid, epoch), said once per instance in
    // the report's symbol_files: its frames are unnamed, and a reader (or a
    // failed test) should see whether memtop never read the maps, read
    // another instance's, or found the process gone.
    void note_no_maps(uint32_t pid, uint32_t epoch);
    std::map<std::pair<uint32_t, uint32_t>, std::string> no_maps_;
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::vector<Frame>> named_;

    Symbolizer symbolizer_;
    std::map<uint32_t, MapsSnapshot> maps_;
    uint64_t maps_reads_ = 0;
    PythonFrames* python_ = nullptr;
    std::vector<std::string> python_notes_;  // said in every report from the first on
};

}  // namespace memtop
