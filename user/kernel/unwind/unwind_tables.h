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

#include "memtop.h"
#include "procinfo/proc_maps.h"

namespace memtop {

struct UnwindStats {
    size_t files = 0;     // tables loaded
    size_t failed = 0;    // files with no usable table (frame pointers only)
    size_t rows = 0;      // rows in use
    size_t capacity = 0;  // rows the kernel array holds
    size_t bytes() const { return capacity * sizeof(memtop_unwind_row); }  // kernel memory, allocated up front
    double build_seconds = 0;                                              // spent deriving tables
};

// The kernel's dev_t for the device that /proc/PID/maps shows (makedev).
uint64_t kernel_dev(uint64_t user_dev);

class UnwindTables {
public:
    // rows_fd: the unwind_rows array (capacity entries); files_fd: unwind_files.
    UnwindTables(int rows_fd, int files_fd, uint32_t capacity, bool verbose);

    // Every executable file mapping of `pid` gets a table (before it runs
    // code memtop will unwind through: at attach, at a -- CMD's start).
    void load_process(int pid);
    // The kernel met a file with no table in `tgid` (MEMTOP_EV_NEED_UNWIND).
    void on_need(uint32_t tgid, const memtop_file_key& file);
    // A table for the file at `path` (the kernel's identity given), e.g. a
    // program before it is exec'd.
    bool load_file(const memtop_file_key& file, const std::string& open_path, const std::string& shown);

    const UnwindStats& stats() const { return stats_; }

private:
    void mark(const memtop_file_key& file, uint32_t state, uint32_t start, uint32_t count);
    int rows_fd_, files_fd_;
    bool verbose_;
    UnwindStats stats_;
    std::map<std::pair<uint64_t, uint64_t>, uint32_t> known_;  // (dev, ino) -> state
};

}  // namespace memtop
