#include "symbolize/lines.h"

#include <algorithm>
#include <set>

namespace memtop {

bool source_matches(const std::string& path, const std::string& wanted) {
    if (wanted.empty() || path.size() < wanted.size()) return false;
    if (path.compare(path.size() - wanted.size(), wanted.size(), wanted) != 0) return false;
    return path.size() == wanted.size() || wanted.front() == '/' || path[path.size() - wanted.size() - 1] == '/';
}

void add_stack_lines(LineReport& out, const StackStats& stats, const std::vector<Frame>& frames) {
    // (line, function) pairs this stack passes through in the file.
    std::set<std::pair<int, std::string>> hit;
    auto consider = [&](const std::optional<std::string>& file, const std::optional<int>& line,
                        const std::optional<std::string>& function) {
        if (!file || !line || !source_matches(*file, out.file)) return;
        if (out.matched.empty()) out.matched = *file;
        hit.insert({*line, function.value_or("??")});
    };
    for (const auto& f : frames) {
        if (f.inlined.empty()) {
            consider(f.file, f.line, f.function);
            continue;
        }
        // inlined[0] holds the location of the address inside the innermost
        // inlined function; each next one is inside the previous caller;
        // the frame's own file:line is the call site in `function`.
        for (size_t i = 0; i < f.inlined.size(); i++) {
            const auto& fn = f.inlined[i].function;
            consider(f.inlined[i].file, f.inlined[i].line, fn);
        }
        consider(f.file, f.line, f.function);
    }
    for (const auto& [line, function] : hit) {
        auto it = std::find_if(out.lines.begin(), out.lines.end(), [&](const LineStats& l) { return l.line == line; });
        if (it == out.lines.end()) {
            out.lines.push_back({line, function});
            it = out.lines.end() - 1;
        }
        it->bytes += stats.bytes;
        it->allocs += stats.allocs;
        it->alloc_bytes_total += stats.alloc_bytes_total;
        it->allocs_total += stats.allocs_total;
    }
    std::sort(out.lines.begin(), out.lines.end(),
              [](const LineStats& a, const LineStats& b) { return a.line < b.line; });
}

}  // namespace memtop
