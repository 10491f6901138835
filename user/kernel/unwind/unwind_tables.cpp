#include "kernel/unwind/unwind_tables.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "memtop.h"
#include "util/unique_fd.h"

namespace memtop {

uint64_t kernel_dev(uint64_t user_dev) {
    return (uint64_t(major(user_dev)) << 20) | minor(user_dev);
}

UnwindTables::UnwindTables(int rows_fd, int files_fd, uint32_t capacity, bool verbose, CfiWorker& worker)
    : rows_fd_(rows_fd), files_fd_(files_fd), verbose_(verbose), worker_(worker) {
    stats_.capacity = capacity;
    stats_.bytes = size_t(capacity) * sizeof(memtop_unwind_row);
}

// The rows are written through a mapping of just the pages they fill:
// the array is BPF_F_MMAPABLE (bpf/unwind.h), and a batch update costs a
// user copy and a checked store per 8-byte row (a compiler's 500,000 rows
// took ~15% of memtop's CPU on a busy build host). Mapping only those pages
// keeps the array out of memtop's resident memory. Where mmap is refused
// (an array made without the flag), one batch update, else a row per call.
void UnwindTables::write_rows(uint32_t start, const std::vector<memtop_unwind_row>& rows) {
    if (rows.empty()) return;
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t first = size_t(start) * sizeof(memtop_unwind_row);
    const size_t end = first + rows.size() * sizeof(memtop_unwind_row);
    const size_t map_from = first / page * page;
    const size_t map_len = (end - map_from + page - 1) / page * page;
    void* m = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, rows_fd_, static_cast<off_t>(map_from));
    if (m != MAP_FAILED) {
        memcpy(static_cast<char*>(m) + (first - map_from), rows.data(), end - first);
        munmap(m, map_len);
        return;
    }
    std::vector<uint32_t> keys(rows.size());
    for (size_t i = 0; i < keys.size(); i++) keys[i] = start + static_cast<uint32_t>(i);
    uint32_t count = static_cast<uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    if (bpf_map_update_batch(rows_fd_, keys.data(), rows.data(), &count, &opts) != 0) {
        // Before 5.6 there is no batch update: one row per call.
        for (size_t i = 0; i < keys.size(); i++) bpf_map_update_elem(rows_fd_, &keys[i], &rows[i], BPF_ANY);
    }
}

void UnwindTables::mark(const FileKey& file, uint32_t state, uint32_t start, uint32_t count) {
    memtop_unwind_file v{state, start, count, 0};
    memtop_file_key key{file.dev, file.ino};
    bpf_map_update_elem(files_fd_, &key, &v, BPF_ANY);
    known_[{file.dev, file.ino}] = state;
}

bool UnwindTables::load_file(const FileKey& file, const std::string& open_path, const std::string& shown) {
    auto k = std::make_pair(file.dev, file.ino);
    auto it = known_.find(k);
    if (it != known_.end()) return it->second == MEMTOP_UNWIND_READY;

    auto t0 = std::chrono::steady_clock::now();
    // memtop opens the file (as root: map_files reaches any process's
    // mappings); the confined worker parses it (cfi_worker.h). O_NONBLOCK:
    // a path that became a FIFO must not block memtop.
    CfiBuild t;
    UniqueFd fd(::open(open_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    struct stat st {};
    if (!fd)
        t.error = std::strerror(errno);
    else if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        t.error = "not a regular file";
    else
        t = worker_.build(fd.get(), shown, stats_.capacity - stats_.rows);
    fd.reset();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    build_seconds_ += ms / 1e3;
    if (t.no_worker) {
        // Said once, not for every file: none will get a table.
        if (!no_worker_said_)
            fprintf(stderr, "memtop: no unwind tables: %s; stacks are walked by frame pointers only\n",
                    t.error.c_str());
        no_worker_said_ = true;
        stats_.failed++;
        mark(file, MEMTOP_UNWIND_FAILED, 0, 0);
        return false;
    }
    std::string why = t.error.empty() ? "" : "unwind table for " + shown + ": " + t.error;
    if (why.empty() && t.total_rows == 0) why = "unwind table for " + shown + ": no rows";
    bool full = why.empty() && t.rows.size() != t.total_rows;
    if (full) {
        why = "unwind table for " + shown + ": " + std::to_string(t.total_rows) + " rows do not fit (" +
              std::to_string(stats_.capacity - stats_.rows) + " of " + std::to_string(stats_.capacity) +
              " left; raise --max-unwind-rows)";
        // Said once: on a busy host every further file would say it again.
        if (full_said_ && !verbose_) why.clear();
        if (!full_said_) why += "; further files that do not fit are not named here (the report counts them)";
        full_said_ = true;
    }
    if (!why.empty() || full) {
        // Stacks through this file fall back to frame pointers and are
        // marked incomplete where that fails; the report says which.
        if (!why.empty()) fprintf(stderr, "memtop: %s; its frames are walked by frame pointers only\n", why.c_str());
        stats_.failed++;
        mark(file, MEMTOP_UNWIND_FAILED, 0, 0);
        return false;
    }

    uint32_t start = static_cast<uint32_t>(stats_.rows);
    write_rows(start, t.rows);
    stats_.rows += t.rows.size();
    stats_.files++;
    mark(file, MEMTOP_UNWIND_READY, start, static_cast<uint32_t>(t.rows.size()));
    if (verbose_)
        fprintf(stderr, "memtop: unwind table for %s: %zu functions, %zu rows, %.1f ms\n", shown.c_str(), t.fdes,
                t.rows.size(), ms);
    return true;
}

void UnwindTables::load_process(int pid) {
    auto maps = read_proc_maps(pid, nullptr);
    if (!maps) return;
    for (const auto& m : *maps) {
        if (m.ino == 0 || m.perms.size() < 3 || m.perms[2] != 'x') continue;
        FileKey key{kernel_dev(m.dev), m.ino};
        if (known_.count({key.dev, key.ino})) continue;
        // map_files reaches the very file mapped, in a container's mount
        // namespace or after it was deleted or replaced on disk.
        char open_path[96];
        snprintf(open_path, sizeof open_path, "/proc/%d/map_files/%llx-%llx", pid, (unsigned long long)m.start,
                 (unsigned long long)m.end);
        load_file(key, open_path, m.path);
    }
}

void UnwindTables::on_need(uint32_t tgid, const FileKey& file) {
    if (known_.count({file.dev, file.ino})) return;
    auto maps = read_proc_maps(static_cast<int>(tgid), nullptr);
    if (maps)
        for (const auto& m : *maps) {
            if (m.ino != file.ino || kernel_dev(m.dev) != file.dev) continue;
            char open_path[96];
            snprintf(open_path, sizeof open_path, "/proc/%u/map_files/%llx-%llx", tgid, (unsigned long long)m.start,
                     (unsigned long long)m.end);
            load_file(file, open_path, m.path);
            return;
        }
    // The process is gone or unmapped the file: ask again next time.
    memtop_file_key key{file.dev, file.ino};
    bpf_map_delete_elem(files_fd_, &key);
}

}  // namespace memtop
