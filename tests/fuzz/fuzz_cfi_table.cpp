// The unwind-table builder on an arbitrary file as a traced process's ELF
// file: memtop opens the files its targets map (their own binaries,
// anything in a container's root) and runs libelf/libdw and its own
// .eh_frame pointer decoding over them. The input is written to a memfd and
// opened by path, as memtop opens /proc/PID/map_files/... .
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kernel/unwind/cfi_table.h"
#include "util/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static int fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
    static const std::string path = "/proc/self/fd/" + std::to_string(fd);
    if (fd < 0 || ftruncate(fd, 0) != 0) abort();
    if (size && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) abort();
    try {
        memtop::CfiTable t = memtop::build_cfi_table(path);
        for (size_t i = 1; i < t.rows.size(); i++)
            if (t.rows[i - 1].off >= t.rows[i].off) abort();  // the BPF side binary-searches them
        if (!t.rows.empty()) memtop::find_row(t.rows, t.rows.back().off);
    } catch (const memtop::MemtopError&) {
        // Not ELF, no CFI: said to the user, the file gets no table.
    }
    return 0;
}
