#include "views/export/folded.h"

#include <cinttypes>
#include <cstdio>
#include <map>

namespace memtop {

namespace {

// ';' separates frames and a line's last space its count: neither may be
// mistaken inside a name (C++ names hold spaces: "operator new(unsigned long)").
std::string clean(std::string s) {
    for (char& c : s)
        if (c == ';' || c == '\n') c = ':';
    return s;
}

std::string unnamed(const Frame& f) {
    char buf[48];
    if (f.module && f.mapping) {
        std::string base = f.module->substr(f.module->rfind('/') + 1);
        snprintf(buf, sizeof buf, "+0x%" PRIx64, f.address - f.mapping->start + f.mapping->offset);
        return base + buf;
    }
    snprintf(buf, sizeof buf, "0x%" PRIx64, f.address);
    return buf;
}

}  // namespace

std::string render_folded(const Report& r, const std::vector<ReportStack>& stacks,
                          const std::vector<ReportStack>& python_stacks) {
    std::map<std::pair<uint32_t, uint32_t>, std::string> comm;
    for (const auto& p : r.processes) comm[{p.pid, p.epoch}] = p.comm;
    std::string out;
    auto add = [&](const ReportStack& s, bool python_domain) {
        if (s.stats.bytes <= 0) return;
        auto c = comm.find({s.stats.pid, s.stats.epoch});
        std::string line = clean(c != comm.end() ? c->second : "?") + " (" + std::to_string(s.stats.pid) + ")";
        // The Python domain's objects are not in the heap's bytes: a frame
        // of their own under the process keeps them apart in a flame graph.
        if (python_domain) line += ";" + std::string(kFoldedPythonRoot);
        if (s.frames.empty()) line += ";[stack not stored]";
        for (auto f = s.frames.rbegin(); f != s.frames.rend(); ++f) {
            line += ';' + clean(f->function ? *f->function : unnamed(*f));
            // Inlined into this frame's function: outermost first.
            for (auto in = f->inlined.rbegin(); in != f->inlined.rend(); ++in)
                if (in->function) line += ';' + clean(*in->function);
        }
        out += line + ' ' + std::to_string(s.stats.bytes) + '\n';
    };
    for (const auto& s : stacks) add(s, false);
    for (const auto& s : python_stacks) add(s, true);
    return out;
}

}  // namespace memtop
