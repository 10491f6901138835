// Which files to probe: the files a process maps that define an allocator
// (its libc, libstdc++, or a static executable's own malloc).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "attach/file_plan.h"
#include "procinfo/proc_maps.h"

namespace memtop {

struct LibraryFile {
    uint64_t dev = 0, ino = 0;  // identity: one attach per distinct file
    std::string path;           // as the process maps it
    std::string open_path;      // where this process's file can be opened from here
};

// A file's headers and symbols (FileSymbols) for the file at `open_path`,
// `shown` in messages: memtop asks its confined worker
// (Tracer::file_symbols). Null when the file cannot be read; *failed set
// (when given) when the worker failed on it, which the reader has said.
using SymbolReader =
    std::function<const FileSymbols*(const std::string& open_path, const std::string& shown, bool* failed)>;

// read_file_symbols in-process, each file once: for tests, and tools run on
// files their user chose. memtop itself asks the worker.
SymbolReader in_process_symbols();

// Remembers, per file identity, whether a file defines an allocator, so a
// rescan of every process on the host asks about each library once.
class AllocatorFinder {
public:
    explicit AllocatorFinder(SymbolReader read) : read_(std::move(read)) {}
    // Executable file mappings of `pid` that define an allocator symbol;
    // *unread (when given): how many of its files the worker failed on.
    std::vector<LibraryFile> files_of(int pid, const std::vector<Mapping>& maps, size_t* unread = nullptr);
    // `shown`: the file as the process maps it, for messages.
    bool defines_allocator(const std::string& open_path, const std::string& shown, uint64_t dev, uint64_t ino,
                           bool* unread = nullptr);

private:
    enum class Known : uint8_t { No, Yes, Unread };
    SymbolReader read_;
    std::map<std::pair<uint64_t, uint64_t>, Known> known_;
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
