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

TracedCommand::TracedCommand(std::string path, std::vector<std::string> argv, bool stdout_to_stderr)
    : path_(std::move(path)) {
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
        execv(path_.c_str(), args.data());
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
    traced_ = ptrace(PTRACE_SEIZE, pid_, nullptr, (void*)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC)) == 0;
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

void TracedCommand::on_child_state(const std::function<void()>& at_exit, const std::function<void()>& at_exec) {
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid_, &st, __WALL | WNOHANG);
        if (r <= 0) return;
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            exited_ = true;
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return;
        }
        if (!WIFSTOPPED(st) || !traced_) continue;
        int event = st >> 16;
        if (event == PTRACE_EVENT_EXIT) {
            at_exit();
            ptrace(PTRACE_DETACH, pid_, nullptr, nullptr);
            traced_ = false;
        } else if (event == PTRACE_EVENT_EXEC) {
            if (at_exec) at_exec();
            ptrace(PTRACE_CONT, pid_, nullptr, nullptr);
        } else if (event == PTRACE_EVENT_STOP) {
            // Group stop (SIGSTOP, SIGTSTP): stay stopped as without memtop.
            ptrace(PTRACE_LISTEN, pid_, nullptr, nullptr);
        } else {
            // A signal on its way to the child: deliver it unchanged.
            ptrace(PTRACE_CONT, pid_, nullptr, (void*)(long)WSTOPSIG(st));
        }
    }
}

}  // namespace memtop
