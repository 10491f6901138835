// `memtop -- CMD`: CMD is forked, held at a gate until every probe is
// attached (no attach race), then exec'd. memtop watches it with ptrace for
// two reasons only: to stop it at each exec (`env LD_PRELOAD=... prog`, a
// shell running prog) so the allocator files the new program loads are
// probed before it runs, and at exit while its memory is still mapped, so
// the final report can name the code of a program that has just ended.
#pragma once

#include <sys/types.h>

#include <functional>
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
    TracedCommand(std::string path, std::vector<std::string> argv, bool stdout_to_stderr = false);
    ~TracedCommand();
    TracedCommand(const TracedCommand&) = delete;  // one owner of the child and its pipes
    TracedCommand& operator=(const TracedCommand&) = delete;

    pid_t pid() const { return pid_; }
    // Lets the child exec. Throws MemtopError (126/127) if exec failed.
    void release();
    // Call when SIGCHLD arrives. `at_exit` runs while the exiting child's
    // memory is still mapped; `at_exec` runs when it has exec'd a program
    // (its own exec of CMD too), before the new program's loader runs, so
    // probes put on the files it will load see its first allocation.
    void on_child_state(const std::function<void()>& at_exit, const std::function<void()>& at_exec = {});
    void signal(int sig);  // passes a signal on to the child
    bool exited() const { return exited_; }
    int exit_status() const { return status_; }  // as a shell reports it: code, or 128+signal

private:
    pid_t pid_ = -1;
    std::string path_;
    UniqueFd gate_fd_;   // write end: one byte opens the gate
    UniqueFd error_fd_;  // read end: errno from a failed exec
    bool traced_ = false;
    bool exited_ = false;
    int status_ = 0;
};

}  // namespace memtop
