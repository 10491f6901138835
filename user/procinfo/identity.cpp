#include "procinfo/identity.h"

#include <vector>

#include "procinfo/proc_file.h"
#include "procinfo/proc_status.h"

namespace memtop {
namespace {

bool has_controller(std::string_view list, std::string_view name) {
    while (!list.empty()) {
        size_t comma = list.find(',');
        if (list.substr(0, comma) == name) return true;
        list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    }
    return false;
}

bool is_hex64(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// "<prefix><64hex>" or "<prefix><64hex>.scope" -> the hex id.
std::optional<std::string> prefixed_id(std::string_view comp, std::string_view prefix) {
    if (!comp.starts_with(prefix)) return std::nullopt;
    comp.remove_prefix(prefix.size());
    if (comp.ends_with(".scope")) comp.remove_suffix(6);
    if (!is_hex64(comp)) return std::nullopt;
    return std::string(comp);
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// systemd unit name escaping: "\x2d" -> '-'.
std::string unescape_unit(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
            int hi = hex_digit(s[i + 2]), lo = hex_digit(s[i + 3]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

// The container of component `comps[i]`, looking at its parent if needed.
std::optional<std::string> match_component(const std::vector<std::string_view>& comps, size_t i) {
    std::string_view c = comps[i];
    std::string_view parent = i > 0 ? comps[i - 1] : std::string_view();
    if (is_hex64(c)) return std::string(c);
    for (std::string_view prefix : {"docker-", "cri-containerd-", "crio-", "libpod-"})
        if (auto id = prefixed_id(c, prefix)) return id;  // "libpod-conmon-<id>" is not hex
    // containerd with the systemd driver on cgroup v1:
    // "kubepods-burstable-pod<uid>.slice:cri-containerd:<64hex>".
    if (size_t k = c.rfind(":cri-containerd:"); k != std::string_view::npos && is_hex64(c.substr(k + 16)))
        return std::string(c.substr(k + 16));
    if (c.starts_with("machine-") && c.ends_with(".scope") && c.size() > 14)
        return unescape_unit(c.substr(8, c.size() - 14));
    if (c.starts_with("lxc.payload.") && c.size() > 12) return std::string(c.substr(12));
    if ((parent == "lxc" || parent == "lxc.payload") && !c.empty()) return std::string(c);
    return std::nullopt;
}

}  // namespace

std::string cgroup_from_proc_cgroup(std::string_view text) {
    std::optional<std::string_view> v2, memory, first;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        size_t c1 = line.find(':');
        if (c1 == std::string_view::npos) continue;
        size_t c2 = line.find(':', c1 + 1);
        if (c2 == std::string_view::npos) continue;
        std::string_view id = line.substr(0, c1);
        std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
        std::string_view path = line.substr(c2 + 1);
        if (path.ends_with(" (deleted)")) path.remove_suffix(10);
        if (id.empty()) continue;
        if (!first) first = path;
        if (id == "0" && controllers.empty()) {
            if (!v2) v2 = path;
        } else if (!memory && has_controller(controllers, "memory")) {
            memory = path;
        }
    }
    if (memory && !(v2 && *memory == "/" && *v2 != "/")) return std::string(*memory);
    if (v2) return std::string(*v2);
    if (first) return std::string(*first);
    return {};
}

std::optional<std::string> container_id_from_cgroup(std::string_view cgroup_path) {
    std::vector<std::string_view> comps;
    std::string_view s = cgroup_path;
    while (!s.empty()) {
        size_t slash = s.find('/');
        std::string_view c = s.substr(0, slash);
        if (!c.empty()) comps.push_back(c);
        s.remove_prefix(slash == std::string_view::npos ? s.size() : slash + 1);
    }
    for (size_t i = comps.size(); i-- > 0;)
        if (auto id = match_component(comps, i)) return id;
    return std::nullopt;
}

ProcessIdentity read_identity(int pid) {
    ProcessIdentity out;
    std::string base = "/proc/" + std::to_string(pid);
    if (auto text = read_proc_file(base + "/cgroup", nullptr)) {
        out.cgroup = cgroup_from_proc_cgroup(*text);
        out.container = container_id_from_cgroup(out.cgroup);
        // Hybrid hosts (v1 controllers plus a v2 tree): a runtime may have
        // named its scope in the v2 tree only.
        if (!out.container) {
            std::string_view t = *text;
            for (size_t at = 0; at < t.size();) {
                size_t nl = t.find('\n', at);
                std::string_view line = t.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
                if (line.starts_with("0::")) out.container = container_id_from_cgroup(line.substr(3));
                if (nl == std::string_view::npos) break;
                at = nl + 1;
            }
        }
    }
    if (auto st = read_proc_status(pid, nullptr); st && !st->nspid.empty()) out.nspid = st->nspid.back();
    return out;
}

}  // namespace memtop
