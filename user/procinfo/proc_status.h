// Parsing of /proc/PID/status.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memtop {

// The fields of /proc/PID/status memtop uses. Memory sizes are in bytes
// (the file says kB); they stay 0 when the line is absent, as for kernel
// threads, which have no Vm*/Rss* lines, and zombies.
struct ProcStatus {
    std::string name;  // comm, unescaped ("\n" and "\\" as the kernel escapes them)
    int tgid = 0, ppid = 0;
    std::vector<int> nspid;  // NSpid: host pid first, innermost last; empty before Linux 4.1
    int uid = -1, gid = -1;  // real user and group (the first of Uid:, Gid:); -1: no such line
    int64_t vm_rss = 0, vm_hwm = 0, rss_anon = 0, rss_file = 0, rss_shmem = 0, vm_swap = 0;
};

// Parses the text of /proc/PID/status. Pure. Returns nullopt unless there
// are a Name and a Tgid line, or if a field it reads does not parse (a
// number, or a size without its " kB"). Other lines are ignored.
std::optional<ProcStatus> parse_proc_status(std::string_view text);

// Reads and parses /proc/PID/status. On failure returns nullopt and, if
// `error` is given, sets it to e.g.
// "read /proc/42/status: No such file or directory" or
// "parse /proc/42/status: unexpected format".
std::optional<ProcStatus> read_proc_status(int pid, std::string* error);

}  // namespace memtop
