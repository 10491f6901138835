#include "procinfo/proc_status.h"

#include <charconv>
#include <cstdint>

#include "procinfo/proc_file.h"

namespace memtop {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

template <typename T>
bool parse_int(std::string_view s, T& out) {
    s = trim(s);
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// "    1772 kB" -> 1772 * 1024.
bool parse_kb(std::string_view s, int64_t& out) {
    s = trim(s);
    if (s.size() < 2 || s.substr(s.size() - 2) != "kB") return false;
    int64_t kb = 0;
    // A size whose bytes do not fit is not the kernel's: refused, not wrapped.
    if (!parse_int(s.substr(0, s.size() - 2), kb) || kb < 0 || kb > INT64_MAX / 1024) return false;
    out = kb * 1024;
    return true;
}

// "1234\t1" -> {1234, 1}.
bool parse_int_list(std::string_view s, std::vector<int>& out) {
    out.clear();
    for (;;) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        if (s.empty()) return true;
        size_t end = s.find_first_of(" \t");
        int v = 0;
        if (!parse_int(s.substr(0, end), v)) return false;
        out.push_back(v);
        s.remove_prefix(end == std::string_view::npos ? s.size() : end);
    }
}

// The kernel prints comm with '\n' as "\n" and '\\' as "\\"; nothing else
// is escaped (a tab or a space stays as it is).
std::string unescape_name(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            if (s[i + 1] == 'n') {
                out += '\n';
                ++i;
                continue;
            }
            if (s[i + 1] == '\\') {
                out += '\\';
                ++i;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

}  // namespace

std::optional<ProcStatus> parse_proc_status(std::string_view text) {
    ProcStatus st;
    bool have_name = false, have_tgid = false;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view key = line.substr(0, colon);
        std::string_view val = line.substr(colon + 1);
        bool ok = true;
        if (key == "Name") {
            // Exactly one tab follows the colon; the name itself may start or
            // end with blanks.
            if (!val.empty() && val.front() == '\t') val.remove_prefix(1);
            st.name = unescape_name(val);
            have_name = true;
        } else if (key == "Tgid") {
            ok = parse_int(val, st.tgid);
            have_tgid = true;
        } else if (key == "PPid") {
            ok = parse_int(val, st.ppid);
        } else if (key == "NSpid") {
            ok = parse_int_list(val, st.nspid);
        } else if (key == "Uid" || key == "Gid") {
            std::vector<int> ids;  // real, effective, saved, filesystem
            ok = parse_int_list(val, ids) && !ids.empty() && ids[0] >= 0;
            if (ok) (key == "Uid" ? st.uid : st.gid) = ids[0];
        } else if (key == "VmRSS") {
            ok = parse_kb(val, st.vm_rss);
        } else if (key == "VmHWM") {
            ok = parse_kb(val, st.vm_hwm);
        } else if (key == "RssAnon") {
            ok = parse_kb(val, st.rss_anon);
        } else if (key == "RssFile") {
            ok = parse_kb(val, st.rss_file);
        } else if (key == "RssShmem") {
            ok = parse_kb(val, st.rss_shmem);
        } else if (key == "VmSwap") {
            ok = parse_kb(val, st.vm_swap);
        }
        if (!ok) return std::nullopt;
    }
    if (!have_name || !have_tgid) return std::nullopt;
    return st;
}

std::optional<ProcStatus> read_proc_status(int pid, std::string* error) {
    std::string path = "/proc/" + std::to_string(pid) + "/status";
    auto text = read_proc_file(path, error);
    if (!text) return std::nullopt;
    auto st = parse_proc_status(*text);
    if (!st && error) *error = "parse " + path + ": unexpected format";
    return st;
}

}  // namespace memtop
