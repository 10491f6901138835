// Parsing of /proc/PID/maps.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memtop {

// One line of /proc/PID/maps.
struct Mapping {
    uint64_t start = 0;  // first address of the mapping
    uint64_t end = 0;    // one past the last address
    uint64_t pgoff = 0;  // file offset mapped at `start`
    uint64_t dev = 0;    // makedev(major, minor), comparable with stat's st_dev
    uint64_t ino = 0;    // 0 for anonymous and pseudo mappings
    std::string perms;   // "r-xp"
    std::string path;    // file path without " (deleted)", "[heap]", or empty
    bool deleted = false;
};

// Parses the text of /proc/PID/maps. Pure. Lines that do not parse are
// skipped. The result keeps the input order (the kernel sorts by start).
std::vector<Mapping> parse_proc_maps(std::string_view text);

// Reads and parses /proc/PID/maps. On failure returns nullopt and, if
// `error` is given, sets it to e.g.
// "read /proc/42/maps: No such file or directory".
// A process that is exiting may yield an empty vector.
std::optional<std::vector<Mapping>> read_proc_maps(int pid, std::string* error);

// The mapping containing `addr`, or nullptr. `maps` must be sorted by start
// and non-overlapping, as parse_proc_maps returns them.
const Mapping* find_mapping(const std::vector<Mapping>& maps, uint64_t addr);

}  // namespace memtop
