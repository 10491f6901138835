// One ELF file's call-frame information (.eh_frame, else .debug_frame),
// flattened into the rows the BPF unwinder walks: for each code range, how
// to find the caller's frame. libdw interprets the CFI programs; this file
// only chooses what to keep of each resulting rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "memtop.h"

namespace memtop {

struct CfiTable {
    // Sorted by file offset; a row covers [off, next row's off).
    std::vector<memtop_unwind_row> rows;
    size_t fdes = 0;         // functions described
    size_t unsupported = 0;  // rows whose rule the BPF unwinder cannot follow
};

// Reads the open file `fd`, called `path` in messages (memtop builds tables
// in its confined worker, kernel/unwind/cfi_worker.h, from descriptors it
// opened). Throws MemtopError naming the file when it is not ELF or has no
// call-frame information at all.
CfiTable build_cfi_table_fd(int fd, const std::string& path);
// The same for the file at `path` (any readable path), opened here: for
// tests, tools and the fuzzer.
CfiTable build_cfi_table(const std::string& path);

// The row for file offset `off`, or nullptr before the first row: the lookup
// the BPF side does, for tests and tools.
const memtop_unwind_row* find_row(const std::vector<memtop_unwind_row>& rows, uint64_t off);

}  // namespace memtop
