// What memtop places in one allocator file, as one value that crosses the
// boundary to the confined worker (kernel/unwind/cfi_worker, request 'P'):
// the worker parses the file (ElfImage: symbol tables, relocations, CFI,
// capstone) and sends the plan back; memtop decodes it with every value
// checked (decode_plan) before any probe is placed from it. The same
// make_plan runs in-process for tests, tools and the fuzzer, so the worker's
// plan and the in-process one can be compared byte for byte (encode_plan).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attach/elf_image.h"
#include "attach/placement.h"
#include "attach/pymalloc_sites.h"
#include "symbolize/wire.h"

namespace memtop {

enum class PlanKind : uint8_t {
    Probes = 1,    // plan_probes: the allocator entry points
    Pymalloc = 2,  // plan_pymalloc: CPython's inlined object-allocator checks
};

struct FilePlan {
    PlanKind kind = PlanKind::Probes;
    // The file's PT_LOAD segments: memtop translates the pymalloc plan's
    // addresses through them and checks every probe offset against the
    // executable ones (docs/privsep-cfi.md, "4. Probe placement").
    std::vector<LoadSegment> segments;
    bool position_dependent = false;  // ET_EXEC
    std::vector<ProbeSite> sites;     // Probes
    PymallocPlan pymalloc;            // Pymalloc

    // Link-time address -> file offset, through the segments (as ElfImage's).
    std::optional<uint64_t> file_offset(uint64_t vaddr) const;
    // Whether [offset, offset + 1) lies in the file bytes of an executable segment.
    bool in_code(uint64_t offset) const;
};

// In-process: the plan of `image` (what the worker computes).
FilePlan make_plan(const ElfImage& image, PlanKind kind);

// Appends the plan (without its kind: the request says it).
void encode_plan(wire::Writer& w, const FilePlan& plan);

// Reads a plan the worker sent for a file of `file_size` bytes, checking
// every value: "" when it may be used, else what is wrong (then `out` is
// not to be used). Bounds: at most 64 segments, each inside the file;
// probe sites only of allocator_symbols() names and ProbeProgram values,
// each probed offset (and every return site) inside an executable
// segment's file bytes, the entry offset the one its function's address
// gives; strings printable and short; at most 1 << 16 pymalloc sites.
std::string decode_plan(wire::Reader& r, PlanKind kind, uint64_t file_size, FilePlan& out);

}  // namespace memtop
