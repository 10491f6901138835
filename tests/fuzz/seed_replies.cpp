// Writes seeds for fuzz_worker_reply: memtop-cfi's answers for real files
// (the plan of each kind and the symbols answer), encoded as the worker
// sends them, behind fuzz_worker_reply's picker byte and the file's size.
// Usage: seed_replies DIR FILE...
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "attach/elf_image.h"
#include "attach/file_plan.h"
#include "util/errors.h"

namespace {
void write_seed(const std::string& path, uint8_t pick, uint64_t size, const std::string& reply) {
    std::ofstream out(path, std::ios::binary);
    out.put(static_cast<char>(pick));
    out.write(reinterpret_cast<const char*>(&size), sizeof size);
    out.write(reply.data() + 1, static_cast<std::streamsize>(reply.size() - 1));  // without the type letter
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: seed_replies DIR FILE...\n");
        return 2;
    }
    const std::string dir = argv[1];
    for (int i = 2; i < argc; i++) {
        struct stat st {};
        if (stat(argv[i], &st) != 0) continue;
        const uint64_t size = static_cast<uint64_t>(st.st_size);
        std::string base = argv[i];
        base = base.substr(base.rfind('/') + 1);
        try {
            const auto image = memtop::ElfImage::open(argv[i]);
            for (auto kind : {memtop::PlanKind::Probes, memtop::PlanKind::Pymalloc}) {
                memtop::wire::Writer w('p');
                memtop::encode_plan(w, memtop::make_plan(*image, kind));
                write_seed(dir + "/" + base + (kind == memtop::PlanKind::Probes ? ".probes" : ".pymalloc"),
                           kind == memtop::PlanKind::Probes ? 0 : 1, size, w.bytes());
            }
            memtop::wire::Writer w('s');
            memtop::encode_file_symbols(w, memtop::read_file_symbols(argv[i]));
            write_seed(dir + "/" + base + ".symbols", 2, size, w.bytes());
        } catch (const memtop::MemtopError& e) {
            std::fprintf(stderr, "seed_replies: %s\n", e.what());
        }
    }
    return 0;
}
