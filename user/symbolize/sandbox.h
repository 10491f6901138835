// The worker process that parses files of traced processes (their ELF and
// DWARF, through libelf/libdw) on memtop's behalf. memtop runs as root; the
// files are the traced programs', which may be hostile (libdw's parsers
// have had many CVEs). The worker is forked from memtop and, before it
// reads anything, gives up everything a parser bug could abuse: it becomes
// nobody (or keeps a non-root uid) with empty capability sets, sets
// no_new_privs, closes every descriptor but its socket, and installs a
// seccomp filter that allows reading and mapping descriptors it is handed,
// memory management and its socket, and nothing that opens a file. The
// privileged side opens the files (safely: /proc/PID/map_files, openat2)
// and hands the descriptors over the socket (SCM_RIGHTS).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "util/unique_fd.h"

namespace memtop {

// One message over a stream socket: a 32-bit length, the bytes, and at
// most one descriptor attached.
bool send_message(int sock, const std::string& payload, int fd = -1);

enum class ReceiveStatus { Ok, Closed, TimedOut };
// Waits at most `timeout_ms` (< 0: forever) for the next message.
ReceiveStatus receive_message(int sock, std::string& payload, UniqueFd* fd, int timeout_ms);

// Puts the calling process in the sandbox described above. Returns "" or
// what failed (the worker then exits rather than parse unconfined).
std::string confine_worker();

// Gives the heap's free memory back to the kernel (malloc_trim): a worker
// calls it after a large file, or it keeps the most it ever held.
void release_free_heap();

class Worker {
public:
    // Forks a worker, process name `name` ("memtop-symbols"), that confines
    // itself and then runs serve(socket) until it returns; the worker's
    // socket is the only descriptor it keeps. Throws MemtopError, its text
    // starting with `role` ("symbolization worker"), if the worker cannot
    // be started.
    Worker(const std::string& name, const std::string& role, const std::function<void(int)>& serve);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    int socket() const { return sock_.get(); }
    pid_t pid() const { return pid_; }
    // Kills the worker (a request it did not answer in time).
    void kill();
    // Why the worker ended, after its socket closed: "was killed by signal 11
    // (Segmentation fault)", "was killed by its seccomp filter", "exited with
    // status 1"; waits for it.
    std::string end_reason();

private:
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd sock_;
    bool reaped_ = false;
};

}  // namespace memtop
