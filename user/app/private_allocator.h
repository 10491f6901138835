// --heap-all (and --cgroup, --container: their probes are on the files, for
// every process) puts a uprobe on every process's malloc, memtop's own libc
// included: each allocation memtop makes while symbolizing and reporting
// would take a trap (measured: twice its system time). So memtop re-runs
// itself once on private copies of its allocator libraries, which no probe
// is on; the copies are deleted as soon as they are mapped.
#pragma once

#include <optional>
#include <string>

namespace memtop {

// The options the re-run carries (hidden from --help).
inline constexpr const char* kPrivateLibsOption = "--private-libs";
inline constexpr const char* kSavedLibraryPathOption = "--saved-ld-library-path";

// Copies memtop's libc and libstdc++ to a private directory and re-executes
// memtop on them with the same arguments (plus the two above). Returns only
// when that cannot be done: memtop then runs traced, slower but right.
void rerun_on_private_allocator(int argc, char** argv);

// In the re-run: the copies are mapped, so their directory goes, and the
// library path is what it was for anything memtop starts.
void finish_private_allocator(const std::string& dir, const std::optional<std::string>& saved_library_path);

}  // namespace memtop
