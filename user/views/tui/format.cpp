#include "views/tui/format.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace memtop::tui {

std::string host_memory_text(const std::optional<MemInfo>& m) {
    if (!m) return "Mem ? (/proc/meminfo unreadable)";
    return "Mem " + human_bytes(m->total) + " total, " + human_bytes(m->used()) + " used, " +
           human_bytes(m->available) + " available   Swap " + human_bytes(m->swap_used()) + " of " +
           human_bytes(m->swap_total) + " used";
}

std::string self_text(const SelfStats& s) {
    char buf[160];
    snprintf(buf, sizeof buf, "memtop %.1f%% CPU, %s resident, %zu probes", s.cpu_percent,
             human_bytes(s.rss_bytes).c_str(), s.probes);
    return buf;
}

std::string lost_text(const LostCounters& l) {
    std::string out;
    for (const auto& k : kLostKinds)
        if (l[k.kind]) out += (out.empty() ? "" : ", ") + std::to_string(l[k.kind]) + " " + k.brief;
    return "lost: " + (out.empty() ? std::string("nothing") : out);
}

std::string interval_text(double seconds) {
    char buf[32];
    if (seconds < 60) {
        if (seconds == std::floor(seconds))
            snprintf(buf, sizeof buf, "%.0fs", seconds);
        else
            snprintf(buf, sizeof buf, "%.1fs", seconds);
        return buf;
    }
    long s = std::lround(seconds);
    if (s % 60)
        snprintf(buf, sizeof buf, "%ldm%lds", s / 60, s % 60);
    else
        snprintf(buf, sizeof buf, "%ldm", s / 60);
    return buf;
}

double next_interval(double seconds, int dir) {
    static const double steps[] = {0.5, 1, 2, 3, 5, 10, 15, 30, 60};
    if (dir > 0) {
        for (double s : steps)
            if (s > seconds + 1e-9) return s;
        return std::max(seconds, steps[std::size(steps) - 1]);
    }
    for (auto it = std::rbegin(steps); it != std::rend(steps); ++it)
        if (*it < seconds - 1e-9) return *it;
    return std::min(seconds, steps[0]);
}

namespace {
std::string base(const std::string& path) {
    return std::filesystem::path(path).filename().string();
}
}  // namespace

std::string frame_text(const Frame& f) {
    char buf[64];
    std::string out;
    if (f.function) {
        out = *f.function;
        if (f.offset) {
            snprintf(buf, sizeof buf, "+0x%" PRIx64, *f.offset);
            out += buf;
        }
    } else {
        snprintf(buf, sizeof buf, "0x%" PRIx64, f.address);
        out = buf;
    }
    if (f.file) out += "  " + base(*f.file) + (f.line ? ":" + std::to_string(*f.line) : "");
    // A Python frame is the interpreter's, not a module's code.
    out += "  (" +
           (f.kind == FrameKind::Python ? std::string("python")
            : f.module                  ? base(*f.module)
                                        : std::string("?")) +
           ")";
    return out;
}

std::string inlined_text(const InlinedFrame& f) {
    std::string out = "(inlined) " + f.function.value_or("??");
    if (f.file) out += "  " + base(*f.file) + (f.line ? ":" + std::to_string(*f.line) : "");
    return out;
}

std::vector<std::string> bar_chart(const std::vector<std::optional<int64_t>>& values, int width, int height) {
    if (width <= 0 || height <= 0) return {};
    std::vector<std::string> lines(height, std::string(width, ' '));
    size_t n = std::min(values.size(), static_cast<size_t>(width));
    size_t first = values.size() - n;
    int64_t max = 0;
    for (size_t i = first; i < values.size(); i++)
        if (values[i]) max = std::max(max, *values[i]);
    if (max <= 0) return lines;
    for (size_t i = 0; i < n; i++) {
        const auto& v = values[first + i];
        if (!v || *v <= 0) continue;
        int x = width - static_cast<int>(n) + static_cast<int>(i);
        // Half-cells filled, at least one for anything above zero.
        int halves = std::max<int>(1, static_cast<int>(std::lround(2.0 * height * *v / max)));
        for (int row = 0; row < height; row++) {  // row 0: the bottom line
            char& c = lines[height - 1 - row][x];
            if (halves >= 2 * (row + 1))
                c = '#';
            else if (halves == 2 * row + 1)
                c = '.';
        }
    }
    return lines;
}

}  // namespace memtop::tui
