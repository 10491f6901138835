// `memtop -- CMD`: CMD is forked, held at a gate until every probe is
// attached (no attach race), then exec'd. memtop watches it with ptrace for
// three reasons only: with -f, to stop each process it forks until that
// process is probed; to stop it at each exec (`env LD_PRELOAD=... prog`, a
// shell running prog) so the allocator files the new program loads are
// probed before it runs, and at exit while its memory is still mapped, so
// the final report can name the code of a program that has just ended.
#pragma once

#include <sys/types.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "util/unique_fd.h"

namespace memtop {

class TracedCommand {
public:
    // Forks the child, which waits at the gate. `path` is the resolved
    // executable (resolve_command), argv[0] stays as the user typed it.
    // stdout_to_stderr: CMD's stdout is memtop's stderr (memtop's stdout
    // carries reports a program reads, --json).
    // follow (-f): the processes CMD forks are traced too, each stopped at
    // birth until `at_fork` has probed it.
    // env: CMD's environment ("NAME=value"); empty: memtop's own.
    TracedCommand(std::string path, std::vector<std::string> argv, bool stdout_to_stderr = false, bool follow = false,
                  std::vector<std::string> env = {});
    ~TracedCommand();
    TracedCommand(const TracedCommand&) = delete;  // one owner of the child and its pipes
    TracedCommand& operator=(const TracedCommand&) = delete;

    pid_t pid() const { return pid_; }
    // Lets the child exec. Throws MemtopError (126/127) if exec failed.
    void release();
    // What memtop does at each stop of a traced process (CMD, or with follow
    // a process it started), given its pid. at_exit runs while the exiting
    // process's memory is still mapped; at_exec when it has exec'd a program
    // (its own exec of CMD too), before the new program's loader runs, so
    // probes put on the files it will load see its first allocation; at_fork
    // for a new process, before it runs.
    struct Hooks {
        std::function<void(int)> at_exit, at_exec, at_fork;
        // A signal stopped pid on its way in: true when memtop sent it
        // itself (bpf/python_frames.h: py_finalize) and it is not delivered.
        std::function<bool(int pid, int sig)> at_signal;
    };
    // Call when SIGCHLD arrives.
    void on_child_state(const Hooks& hooks);
    // CMD and, with follow, every process it started, exited or not.
    const std::vector<int>& processes() const { return processes_; }
    void signal(int sig);  // passes a signal on to the child
    bool exited() const { return exited_; }
    int exit_status() const { return status_; }  // as a shell reports it: code, or 128+signal

private:
    pid_t pid_ = -1;
    std::string path_;
    UniqueFd gate_fd_;   // write end: one byte opens the gate
    UniqueFd error_fd_;  // read end: errno from a failed exec
    bool traced_ = false;
    bool follow_ = false;
    std::vector<int> processes_;
    std::set<int> followed_;     // with follow: children traced and not yet detached
    std::set<int> first_stops_;  // children probed at their parent's fork event, not yet stopped at birth
    bool exited_ = false;
    int status_ = 0;
};

}  // namespace memtop
