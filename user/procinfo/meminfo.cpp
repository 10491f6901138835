#include "procinfo/meminfo.h"

#include <charconv>

#include "procinfo/proc_file.h"

namespace memtop {
namespace {

// "   24683620 kB" -> 24683620 * 1024.
bool parse_kb(std::string_view s, int64_t& out) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.size() < 3 || s.substr(s.size() - 2) != "kB") return false;
    s.remove_suffix(2);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    int64_t kb = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), kb);
    if (ec != std::errc() || p != s.data() + s.size() || kb < 0) return false;
    out = kb * 1024;
    return true;
}

}  // namespace

std::optional<MemInfo> parse_meminfo(std::string_view text) {
    MemInfo m;
    bool have_total = false, have_available = false;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view key = line.substr(0, colon), val = line.substr(colon + 1);
        int64_t* field = nullptr;
        if (key == "MemTotal") {
            field = &m.total;
            have_total = true;
        } else if (key == "MemFree") {
            field = &m.free;
        } else if (key == "MemAvailable") {
            field = &m.available;
            have_available = true;
        } else if (key == "SwapTotal") {
            field = &m.swap_total;
        } else if (key == "SwapFree") {
            field = &m.swap_free;
        }
        if (field && !parse_kb(val, *field)) return std::nullopt;
    }
    if (!have_total) return std::nullopt;
    if (!have_available) m.available = m.free;
    return m;
}

std::optional<MemInfo> read_meminfo(std::string* error) {
    auto text = read_proc_file("/proc/meminfo", error);
    if (!text) return std::nullopt;
    auto m = parse_meminfo(*text);
    if (!m && error) *error = "parse /proc/meminfo: unexpected format";
    return m;
}

}  // namespace memtop
