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

TracedCommand::TracedCommand(std::string path, std::vector<std::string> argv) : path_(std::move(path)) {
    int gate[2], err[2];
    if (pipe2(gate, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        throw MemtopError(kExitFailure, describe("create pipes for " + path_, errno));

    // Everything exec needs is prepared before fork: the child only reads,
    // unblocks signals and execs (no allocation between fork and exec).
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);

    pid_ = fork();
    if (pid_ < 0) throw MemtopError(kExitFailure, describe("fork for " + path_, errno));
    if (pid_ == 0) {
        close(gate[1]);
        close(err[0]);
        char c;
        ssize_t n;
        do n = read(gate[0], &c, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) _exit(127);  // memtop went away before the gate opened
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        execv(path_.c_str(), args.data());
        int e = errno;
        (void)!write(err[1], &e, sizeof e);
        _exit(e == ENOENT ? 127 : 126);
    }
    close(gate[0]);
    close(err[1]);
    gate_fd_ = gate[1];
    error_fd_ = err[0];
    // Seize (no stop now); only PTRACE_EVENT_EXIT is asked for. Without it
    // memtop still works, but may name fewer frames of the final report.
    traced_ = ptrace(PTRACE_SEIZE, pid_, nullptr, (void*)(long)PTRACE_O_TRACEEXIT) == 0;
}

TracedCommand::~TracedCommand() {
    if (gate_fd_ >= 0) close(gate_fd_);
    if (error_fd_ >= 0) close(error_fd_);
}

void TracedCommand::release() {
    char c = 1;
    (void)!write(gate_fd_, &c, 1);
    close(gate_fd_);
    gate_fd_ = -1;
    int e = 0;
    ssize_t n;
    do n = read(error_fd_, &e, sizeof e);
    while (n < 0 && errno == EINTR);
    close(error_fd_);
    error_fd_ = -1;
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

void TracedCommand::on_child_state(const std::function<void()>& at_exit) {
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
