// /proc/PID/maps: the kernel writes it, but the paths in it are file names
// the traced process chose (spaces, newlines, " (deleted)" of its own).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "procinfo/proc_maps.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto maps = memtop::parse_proc_maps(text);
    std::vector<memtop::Mapping> sorted;
    for (const auto& m : maps) {
        if (m.end < m.start) abort();
        if (m.path.find('\n') != std::string::npos) abort();
        if (sorted.empty() || m.start >= sorted.back().end) sorted.push_back(m);
    }
    for (const auto& m : sorted) {
        for (uint64_t a : {m.start, m.end - 1, m.end}) {
            const memtop::Mapping* hit = memtop::find_mapping(sorted, a);
            if (hit && (a < hit->start || a >= hit->end)) abort();
        }
    }
    return 0;
}
