// Probe placement and the symbols request on an arbitrary file as an
// allocator library or a target's mapped file: what memtop-cfi runs for
// requests 'P' and 'S' (attach/file_plan.h: ElfImage's symbol tables,
// relocations and segments, fde_ranges, capstone). The input is written to
// a memfd and opened by path, as memtop hands the worker a descriptor.
// The answers then go through memtop's own checks, as the worker's reply
// would: an honest worker's symbols answer must always pass them.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "attach/elf_image.h"
#include "attach/file_plan.h"
#include "util/errors.h"

namespace {

void check_plan(const memtop::ElfImage& image, memtop::PlanKind kind, uint64_t size) {
    const memtop::FilePlan plan = memtop::make_plan(image, kind);
    memtop::wire::Writer w('p');
    memtop::encode_plan(w, plan);
    memtop::wire::Reader r(w.bytes());
    r.type();
    memtop::FilePlan back;
    // A hostile file may make a plan memtop refuses (an offset outside its
    // code): that file gets no probes. Decoded for the checks' sake.
    memtop::decode_plan(r, kind, size, back);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static int fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
    static const std::string path = "/proc/self/fd/" + std::to_string(fd);
    if (fd < 0 || ftruncate(fd, 0) != 0) abort();
    if (size && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) abort();
    try {
        const auto asked = memtop::ElfImage::open(path, memtop::symbol_questions());
        const memtop::FileSymbols s = memtop::read_file_symbols(*asked);
        memtop::wire::Writer w('s');
        memtop::encode_file_symbols(w, s);
        memtop::wire::Reader r(w.bytes());
        r.type();
        memtop::FileSymbols back;
        if (!memtop::decode_file_symbols(r, size, back).empty()) abort();  // would blame the worker
        if (back.defines_allocator() != s.defines_allocator() || back.interpreter != s.interpreter) abort();
    } catch (const memtop::MemtopError&) {
        // Not ELF: the worker says so, the file is not probed.
    }
    try {
        const auto image = memtop::ElfImage::open(path);
        check_plan(*image, memtop::PlanKind::Probes, size);
        check_plan(*image, memtop::PlanKind::Pymalloc, size);
    } catch (const memtop::MemtopError&) {
    }
    return 0;
}
