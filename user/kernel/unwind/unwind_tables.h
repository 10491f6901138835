// The unwind tables the BPF unwinder reads (bpf/unwind.h): built lazily per
// file, keyed by the file's identity (device, inode) so one table serves
// every process that maps the file, and written into two kernel maps: the
// rows of every table in one array, and file -> row range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernel/events.h"
#include "kernel/unwind/cfi_worker.h"
#include "model/snapshot.h"
#include "procinfo/proc_maps.h"

namespace memtop {

// The kernel's dev_t for the device that /proc/PID/maps shows (makedev).
uint64_t kernel_dev(uint64_t user_dev);

class UnwindTables {
public:
    // rows_fd: the unwind_rows array (capacity entries); files_fd:
    // unwind_files; worker: memtop-cfi, which the Tracer shares with probe
    // placement (it outlives this).
    UnwindTables(int rows_fd, int files_fd, uint32_t capacity, bool verbose, CfiWorker& worker);

    // Every executable file mapping of `pid` gets a table (before it runs
    // code memtop will unwind through: at attach, at a -- CMD's start).
    void load_process(int pid);
    // The kernel met a file with no table in `tgid` (EventSink::unwind_table_needed).
    void on_need(uint32_t tgid, const FileKey& file);
    // A table for the file at `path` (the kernel's identity given), e.g. a
    // program before it is exec'd.
    bool load_file(const FileKey& file, const std::string& open_path, const std::string& shown);

    const UnwindTableStats& stats() const { return stats_; }
    double build_seconds() const { return build_seconds_; }
    // The worker that builds the tables (memtop-cfi), 0 when none runs.
    pid_t worker_pid() const { return worker_.pid(); }

private:
    void mark(const FileKey& file, uint32_t state, uint32_t start, uint32_t count);
    void write_rows(uint32_t start, const std::vector<memtop_unwind_row>& rows);
    int rows_fd_, files_fd_;
    bool verbose_;
    // Parses the files (libdw), unprivileged; a file it crashes or hangs on
    // gets no table, like a file without CFI.
    CfiWorker& worker_;
    UnwindTableStats stats_;
    double build_seconds_ = 0;                                 // spent deriving tables
    bool full_said_ = false;                                   // the rows array filled, and memtop said so
    bool no_worker_said_ = false;                              // memtop-cfi could not be started, and memtop said so
    std::map<std::pair<uint64_t, uint64_t>, uint32_t> known_;  // (dev, ino) -> state
};

}  // namespace memtop
