#include "kernel/late_detach.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>

namespace memtop {

bool close_after_exit(const std::vector<int>& fds) {
    if (fds.empty()) return true;
    // The child waits for EOF on this pipe: the write end stays open in
    // memtop (close-on-exec, never written) until memtop exits.
    int exited[2];
    if (pipe2(exited, O_CLOEXEC) != 0) return false;
    // What the child keeps, made now: it must not allocate (memtop has
    // threads, one of which may hold the allocator's lock at the fork).
    std::vector<int> keep = fds;
    keep.push_back(exited[0]);
    std::sort(keep.begin(), keep.end());
    pid_t pid = fork();
    if (pid < 0) {
        close(exited[0]);
        close(exited[1]);
        return false;
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here.
        int next = 0;
        for (int fd : keep) {
            if (fd > next) close_range(next, fd - 1, 0);
            next = fd + 1;
        }
        close_range(next, ~0U, 0);
        prctl(PR_SET_NAME, "memtop-detach");
        // Ctrl-C or the session's end must not cut the detach short; a
        // SIGKILL would only move the same work into the kernel's exit path.
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        char c;
        while (read(exited[0], &c, 1) < 0 && errno == EINTR) {
        }
        for (int fd : fds) close(fd);
        _exit(0);
    }
    close(exited[0]);
    // exited[1] is left open on purpose: memtop's exit closes it.
    return true;
}

}  // namespace memtop
