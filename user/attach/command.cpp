#include "attach/command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/errors.h"

namespace memtop {

TracedCommand::TracedCommand(std::string path, std::vector<std::string> argv, bool stdout_to_stderr, bool follow,
                             std::vector<std::string> env)
    : path_(std::move(path)), follow_(follow) {
    int gate[2], err[2];
    if (pipe2(gate, O_CLOEXEC) != 0) throw MemtopError(kExitFailure, describe("create pipes for " + path_, errno));
    UniqueFd gate_read(gate[0]), gate_write(gate[1]);
    if (pipe2(err, O_CLOEXEC) != 0) throw MemtopError(kExitFailure, describe("create pipes for " + path_, errno));
    UniqueFd err_read(err[0]), err_write(err[1]);

    // Everything exec needs is prepared before fork: the child only reads,
    // unblocks signals and execs (no allocation between fork and exec).
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_ = fork();
    if (pid_ < 0) throw MemtopError(kExitFailure, describe("fork for " + path_, errno));
    if (pid_ == 0) {
        gate_write.reset();  // memtop's ends: a gate memtop never opens must read EOF
        err_read.reset();
        char c;
        ssize_t n;
        do n = read(gate_read.get(), &c, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) _exit(127);  // memtop went away before the gate opened
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        if (stdout_to_stderr) dup2(STDERR_FILENO, STDOUT_FILENO);
        if (env.empty())
            execv(path_.c_str(), args.data());
        else
            execve(path_.c_str(), args.data(), envp.data());
        int e = errno;
        (void)!write(err_write.get(), &e, sizeof e);
        _exit(e == ENOENT ? 127 : 126);
    }
    // The child's ends close as this returns: the error pipe then reads EOF
    // at a successful exec (its write end is close-on-exec).
    gate_fd_ = std::move(gate_write);
    error_fd_ = std::move(err_read);
    // Seize (no stop now); only exec and exit stops are asked for. Without
    // them memtop still works, but probes only the files CMD itself loads
    // and may name fewer frames of the final report.
    long options = PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC;
    if (follow_) options |= PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK;
    traced_ = ptrace(PTRACE_SEIZE, pid_, nullptr, (void*)options) == 0;
    processes_.push_back(pid_);
}

TracedCommand::~TracedCommand() = default;

void TracedCommand::release() {
    char c = 1;
    (void)!write(gate_fd_.get(), &c, 1);
    gate_fd_.reset();
    int e = 0;
    ssize_t n;
    do n = read(error_fd_.get(), &e, sizeof e);
    while (n < 0 && errno == EINTR);
    error_fd_.reset();
    if (n == (ssize_t)sizeof e) {
        int st;
        waitpid(pid_, &st, __WALL);
        exited_ = true;
        status_ = e == ENOENT ? kExitNotFound : kExitCannotRun;
        throw MemtopError(status_, describe("run '" + path_ + "'", e));
    }
}

void TracedCommand::signal(int sig) {
    if (!exited_) kill(pid_, sig);
}

void TracedCommand::on_child_state(const Hooks& hooks) {
    // A new process is stopped at birth (auto-attached, PTRACE_EVENT_STOP)
    // until it is probed; its parent's fork event and its own first stop
    // arrive in either order, and whichever comes first probes it.
    auto adopt = [&](int child) {
        if (!followed_.insert(child).second) return false;
        processes_.push_back(child);
        if (hooks.at_fork) hooks.at_fork(child);
        return true;
    };
    for (;;) {
        int st = 0;
        pid_t r = waitpid(follow_ ? -1 : pid_, &st, __WALL | WNOHANG);
        if (r <= 0) return;
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (r == pid_) {
                exited_ = true;
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            followed_.erase(r);
            continue;
        }
        if (!WIFSTOPPED(st) || (r == pid_ && !traced_)) continue;
        // A stop of a process memtop has not seen yet: one CMD started, stopped
        // at birth before its parent's fork event was read.
        bool newborn = r != pid_ && adopt(r);
        int event = st >> 16;
        if (event == PTRACE_EVENT_EXIT) {
            if (hooks.at_exit) hooks.at_exit(r);
            ptrace(PTRACE_DETACH, r, nullptr, nullptr);
            if (r == pid_) traced_ = false;
            followed_.erase(r);
        } else if (event == PTRACE_EVENT_EXEC) {
            if (hooks.at_exec) hooks.at_exec(r);
            ptrace(PTRACE_CONT, r, nullptr, nullptr);
        } else if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK) {
            unsigned long child = 0;
            if (ptrace(PTRACE_GETEVENTMSG, r, nullptr, &child) == 0 && child && adopt(static_cast<int>(child)))
                first_stops_.insert(static_cast<int>(child));
            ptrace(PTRACE_CONT, r, nullptr, nullptr);
        } else if (event == PTRACE_EVENT_STOP) {
            // A new process's first stop: probed now (adopt), it may run.
            // Otherwise a group stop (SIGSTOP, SIGTSTP): stay stopped as
            // without memtop.
            if (newborn || first_stops_.erase(r))
                ptrace(PTRACE_CONT, r, nullptr, nullptr);
            else
                ptrace(PTRACE_LISTEN, r, nullptr, nullptr);
        } else {
            // A signal on its way: delivered unchanged, unless memtop sent it.
            int sig = WSTOPSIG(st);
            if (hooks.at_signal && hooks.at_signal(r, sig)) sig = 0;
            ptrace(PTRACE_CONT, r, nullptr, (void*)(long)sig);
        }
    }
}

}  // namespace memtop
