// Errors a user can cause end here: one message naming what was attempted and
// why it failed, and a documented exit code (docs/usage.md, "Exit status").
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace memtop {

enum ExitCode : int {
    kExitOk = 0,
    kExitFailure = 1,      // a runtime failure not listed below
    kExitUsage = 2,        // bad command line
    kExitPermission = 3,   // not root / no CAP_BPF+CAP_PERFMON
    kExitKernel = 4,       // the kernel lacks what memtop needs (BTF, uprobes)
    kExitNoTarget = 5,     // a PID that does not exist or exits before attach
    kExitAttach = 6,       // no allocator found / a probe could not attach
    kExitCannotRun = 126,  // CMD found but not executable (as a shell says)
    kExitNotFound = 127,   // CMD not found
};

class MemtopError : public std::runtime_error {
public:
    MemtopError(int exit_code, const std::string& message) : std::runtime_error(message), exit_code_(exit_code) {}
    int exit_code() const { return exit_code_; }

private:
    int exit_code_;
};

// "what: strerror(err)" for the errno-style failures of system and libbpf calls.
inline std::string describe(const std::string& what, int err) {
    if (err < 0) err = -err;
    return what + ": " + std::strerror(err);
}

}  // namespace memtop
