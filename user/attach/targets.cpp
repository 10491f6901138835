#include "attach/targets.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>

#include "procinfo/identity.h"
#include "procinfo/processes.h"
#include "util/errors.h"

namespace memtop {

SymbolReader in_process_symbols() {
    auto known = std::make_shared<std::map<std::string, std::optional<FileSymbols>>>();
    return [known](const std::string& open_path, const std::string&, bool* failed) -> const FileSymbols* {
        if (failed) *failed = false;
        auto it = known->find(open_path);
        if (it == known->end()) {
            std::optional<FileSymbols> s;
            try {
                s = read_file_symbols(open_path);
            } catch (const MemtopError&) {
                // Not an ELF file: nothing to probe.
            }
            it = known->emplace(open_path, std::move(s)).first;
        }
        return it->second ? &*it->second : nullptr;
    };
}

bool AllocatorFinder::defines_allocator(const std::string& open_path, const std::string& shown, uint64_t dev,
                                        uint64_t ino, bool* unread) {
    auto key = std::make_pair(dev, ino);
    auto it = known_.find(key);
    if (it == known_.end()) {
        // Not an ELF file memtop-cfi can read (a deleted file, a data file
        // mapped executable) is not a place to probe.
        bool failed = false;
        const FileSymbols* s = read_(open_path, shown, &failed);
        it = known_.emplace(key, failed ? Known::Unread : s && s->defines_allocator() ? Known::Yes : Known::No).first;
    }
    if (unread) *unread = it->second == Known::Unread;
    return it->second == Known::Yes;
}

std::vector<LibraryFile> AllocatorFinder::files_of(int pid, const std::vector<Mapping>& maps, size_t* unread) {
    if (unread) *unread = 0;
    std::vector<LibraryFile> out;
    std::set<std::pair<uint64_t, uint64_t>> seen;
    for (const auto& m : maps) {
        if (m.perms.find('x') == std::string::npos || m.path.empty() || m.path[0] != '/' || m.ino == 0) continue;
        if (!seen.insert({m.dev, m.ino}).second) continue;
        // Through the process's root, so a container's own libc is the file
        // probed, not the host's file of the same name. A chrooted process's
        // maps show host paths (the kernel names files from the reader's
        // root), which its root does not hold: whenever the path does not
        // lead to the very file mapped, the mapping itself is opened.
        std::string open_path = "/proc/" + std::to_string(pid) + "/root" + m.path;
        struct stat st;
        bool same_file = stat(open_path.c_str(), &st) == 0 && st.st_dev == m.dev && st.st_ino == m.ino;
        if (m.deleted || !same_file) {
            char range[64];
            snprintf(range, sizeof range, "%llx-%llx", (unsigned long long)m.start, (unsigned long long)m.end);
            open_path = "/proc/" + std::to_string(pid) + "/map_files/" + range;
        }
        bool failed = false;
        if (defines_allocator(open_path, m.path, m.dev, m.ino, &failed))
            out.push_back({m.dev, m.ino, m.path, open_path});
        if (failed && unread) ++*unread;
    }
    return out;
}

std::string resolve_command(const std::string& name) {
    auto check = [](const std::string& p) -> int {
        struct stat st;
        if (stat(p.c_str(), &st) != 0) return ENOENT;
        if (S_ISDIR(st.st_mode)) return EISDIR;
        if (access(p.c_str(), X_OK) != 0) return EACCES;
        return 0;
    };
    if (name.empty()) throw MemtopError(kExitNotFound, "run '': command not found");
    if (name.find('/') != std::string::npos) {
        int err = check(name);
        if (err == ENOENT) throw MemtopError(kExitNotFound, describe("run '" + name + "'", err));
        if (err) throw MemtopError(kExitCannotRun, describe("run '" + name + "'", err));
        return name;
    }
    const char* env = getenv("PATH");
    std::string path = env ? env : "/usr/local/bin:/usr/bin:/bin";
    int first_error = 0;
    size_t start = 0;
    while (start <= path.size()) {
        size_t colon = path.find(':', start);
        std::string dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
        if (dir.empty()) dir = ".";
        std::string cand = dir + "/" + name;
        int err = check(cand);
        if (err == 0) return cand;
        if (err != ENOENT && !first_error) first_error = err;
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    if (first_error) throw MemtopError(kExitCannotRun, describe("run '" + name + "'", first_error));
    throw MemtopError(kExitNotFound, "run '" + name + "': command not found in PATH");
}

}  // namespace memtop

namespace memtop {

namespace {

// Where cgroup2 is mounted: /sys/fs/cgroup on a unified host,
// /sys/fs/cgroup/unified on a hybrid one.
std::string cgroup2_root() {
    std::ifstream in("/proc/self/mounts");
    std::string dev, dir, type, rest;
    while (in >> dev >> dir >> type && std::getline(in, rest))
        if (type == "cgroup2") return dir;
    throw MemtopError(kExitKernel, "trace a cgroup: no cgroup2 file system is mounted (see /proc/self/mounts)");
}

// The process's cgroup v2 path ("0::/path" in /proc/PID/cgroup), or "".
std::string cgroup2_path_of(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return "";
}

}  // namespace

std::string resolve_cgroup_dir(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (path.empty()) throw MemtopError(kExitUsage, "--cgroup: empty path");
    const std::string root = cgroup2_root();
    std::string dir = path.rfind(root, 0) == 0 ? path : root + (path.front() == '/' ? "" : "/") + path;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (!fs::is_directory(dir, ec))
        throw MemtopError(kExitNoTarget, "trace cgroup " + path + ": no such cgroup (" + dir + " is not a directory)");
    if (!fs::exists(dir + "/cgroup.procs", ec))
        throw MemtopError(kExitNoTarget,
                          "trace cgroup " + path + ": " + dir + " is not a cgroup v2 directory (no cgroup.procs)");
    return dir;
}

std::string container_cgroup_dir(const std::string& id) {
    if (id.empty()) throw MemtopError(kExitUsage, "--container: empty id");
    std::set<std::string> containers;
    std::string cgroup;
    for (int pid : list_pids()) {
        ProcessIdentity ident = read_identity(pid);  // the v2 path's container, on hybrid hosts too
        if (!ident.container || ident.container->rfind(id, 0) != 0) continue;
        containers.insert(*ident.container);
        cgroup = cgroup2_path_of(pid);
    }
    if (containers.empty())
        throw MemtopError(kExitNoTarget, "trace container " + id + ": no running process belongs to it");
    if (containers.size() > 1)
        throw MemtopError(kExitUsage, "trace container " + id + ": the prefix names " +
                                          std::to_string(containers.size()) + " containers; give more of the id");
    if (cgroup.empty())
        throw MemtopError(kExitNoTarget, "trace container " + id + ": its processes have no cgroup v2 path");
    return resolve_cgroup_dir(cgroup);
}

std::vector<int> cgroup_pids(const std::string& dir) {
    namespace fs = std::filesystem;
    std::vector<int> pids;
    std::vector<std::string> dirs{dir};
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) dirs.push_back(it->path().string());
    for (const auto& d : dirs) {
        std::ifstream in(d + "/cgroup.procs");
        for (int pid; in >> pid;) pids.push_back(pid);
    }
    return pids;
}

}  // namespace memtop
