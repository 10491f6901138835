// Symbolization of a report: every stack's addresses named in one pass,
// after aggregation, with the maps of each process as they were when its
// stacks were stored (a process may be gone by report time). Also where
// incomplete stacks stopped (by module), and the --lines listing, which
// needs the named frames of every stack.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
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
    // A stack of this process instance was stored: read its maps now (and
    // what its JIT appended to its perf map), unless a recent enough
    // snapshot of this instance is kept.
    void stack_stored(uint32_t pid, uint32_t epoch);
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
    };
    // The maps to name a stack of (pid, epoch) with; epoch 0 (growth
    // stacks, per pid) takes any snapshot of the pid. Null when none can be
    // had (the process is gone and none was taken).
    const std::vector<Mapping>* maps_for(uint32_t pid, uint32_t epoch);
    void name_stack(ReportStack& s, AddressKind first);
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
    PythonFrames* python_ = nullptr;
    std::vector<std::string> python_notes_;  // said in every report from the first on
};

}  // namespace memtop
