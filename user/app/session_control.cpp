// What the live screen asks of the session (SessionControl): the interval,
// quitting, the focused process, and heap tracing of one process started or
// stopped from the screen. Kept apart from session.cpp, the data path.
#include <algorithm>

#include "app/session.h"

namespace memtop {

void Session::set_interval(double seconds) {
    interval_ = std::clamp(seconds, 0.1, 3600.0);
    interval_changed_ = true;
}

// Are pid's allocators probed, by the target choice or by trace_pid?
bool Session::heap_traced(int pid) const {
    if (opt_.heap_all || view_pids_.count(pid)) return true;
    if (std::find(opt_.pids.begin(), opt_.pids.end(), pid) != opt_.pids.end()) return true;
    return attacher_->command() && attacher_->command()->pid() == pid;
}

std::string Session::trace_pid(int pid) {
    std::string who = "pid " + std::to_string(pid);
    if (hidden_.erase(pid)) return "heap of " + who + " reported again (its probes had stayed attached)";
    if (heap_traced(pid)) return who + " is already heap-traced";
    std::string done = attacher_->attach_pid(pid);  // throws MemtopError naming what failed
    view_pids_.insert(pid);
    return done;
}

// The tracer keeps no per-process handle on its probes: links are per file,
// and with --heap-all not per process at all. So stopping is partial: the
// process's heap is no longer reported, but its probes stay attached (it
// still takes the traps, and the kernel keeps counting) until memtop exits.
// Its kernel state is kept, not forgotten: forgetting the records of live
// blocks would lose their frees, and the heap shown after `t` again would
// only grow.
std::string Session::untrace_pid(int pid) {
    std::string who = "pid " + std::to_string(pid);
    if (!heap_traced(pid) || hidden_.count(pid)) return who + " is not heap-traced";
    hidden_.insert(pid);
    return "heap of " + who + " no longer reported; its probes stay attached until memtop exits";
}

}  // namespace memtop
