#include "procinfo/proc_maps.h"

#include "procinfo/proc_file.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <system_error>

namespace memtop {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

// Parses an unsigned number in `base` at the front of `s` and removes it.
bool take_number(std::string_view& s, int base, uint64_t& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
    if (ec != std::errc() || ptr == s.data()) return false;
    s.remove_prefix(static_cast<size_t>(ptr - s.data()));
    return true;
}

bool take_char(std::string_view& s, char c) {
    if (s.empty() || s.front() != c) return false;
    s.remove_prefix(1);
    return true;
}

void skip_spaces(std::string_view& s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

// "start-end perms offset major:minor inode [path]"
std::optional<Mapping> parse_line(std::string_view line) {
    Mapping m;
    uint64_t major = 0, minor = 0;
    if (!take_number(line, 16, m.start) || !take_char(line, '-') || !take_number(line, 16, m.end) ||
        !take_char(line, ' '))
        return std::nullopt;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0) return std::nullopt;
    m.perms = std::string(line.substr(0, sp));
    line.remove_prefix(sp + 1);
    if (!take_number(line, 16, m.pgoff) || !take_char(line, ' ') || !take_number(line, 16, major) ||
        !take_char(line, ':') || !take_number(line, 16, minor) || !take_char(line, ' ') ||
        !take_number(line, 10, m.ino))
        return std::nullopt;
    if (!line.empty() && line.front() != ' ' && line.front() != '\t') return std::nullopt;
    if (m.end < m.start) return std::nullopt;
    m.dev = makedev(static_cast<unsigned>(major), static_cast<unsigned>(minor));
    skip_spaces(line);
    // Everything after the padding is the path; it may contain spaces.
    if (line.size() >= kDeletedSuffix.size() && line.substr(line.size() - kDeletedSuffix.size()) == kDeletedSuffix) {
        m.deleted = true;
        line.remove_suffix(kDeletedSuffix.size());
    }
    m.path = std::string(line);
    return m;
}

}  // namespace

std::vector<Mapping> parse_proc_maps(std::string_view text) {
    std::vector<Mapping> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (auto m = parse_line(line)) out.push_back(std::move(*m));
    }
    return out;
}

std::optional<std::vector<Mapping>> read_proc_maps(int pid, std::string* error) {
    auto text = read_proc_file("/proc/" + std::to_string(pid) + "/maps", error);
    if (!text) return std::nullopt;
    return parse_proc_maps(*text);
}

const Mapping* find_mapping(const std::vector<Mapping>& maps, uint64_t addr) {
    // First mapping whose start is > addr; the candidate is the one before.
    auto it =
        std::upper_bound(maps.begin(), maps.end(), addr, [](uint64_t a, const Mapping& m) { return a < m.start; });
    if (it == maps.begin()) return nullptr;
    --it;
    return addr < it->end ? &*it : nullptr;
}

}  // namespace memtop
