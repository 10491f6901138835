// Which files to probe: the files a process maps that define an allocator
// (its libc, libstdc++, or a static executable's own malloc).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "procinfo/proc_maps.h"

namespace memtop {

struct LibraryFile {
    uint64_t dev = 0, ino = 0;  // identity: one attach per distinct file
    std::string path;           // as the process maps it
    std::string open_path;      // where this process's file can be opened from here
};

// Remembers, per file identity, whether a file defines an allocator, so a
// rescan of every process on the host opens each library once.
class AllocatorFinder {
public:
    // Executable file mappings of `pid` that define an allocator symbol.
    std::vector<LibraryFile> files_of(int pid, const std::vector<Mapping>& maps);
    bool defines_allocator(const std::string& open_path, uint64_t dev, uint64_t ino);

private:
    std::map<std::pair<uint64_t, uint64_t>, bool> known_;
};

// The cgroup v2 directory for --cgroup PATH: PATH itself when it is a
// directory under /sys/fs/cgroup, else /sys/fs/cgroup/PATH. Throws
// MemtopError(kExitNoTarget) naming what was looked at.
std::string resolve_cgroup_dir(const std::string& path);
// The cgroup directory of --container ID: the cgroup of a running process
// whose container id starts with ID. Throws MemtopError(kExitNoTarget) when
// none does, or (kExitUsage) when ID names more than one container.
std::string container_cgroup_dir(const std::string& id);
// Processes in the cgroup directory and every cgroup below it.
std::vector<int> cgroup_pids(const std::string& dir);
// argv[0] resolved as a shell resolves a command name (PATH search unless it
// contains '/'). Throws MemtopError 127 (not found) / 126 (not executable).
std::string resolve_command(const std::string& name);

}  // namespace memtop
