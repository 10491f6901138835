// What memtop places in one allocator file, as one value that crosses the
// boundary to the confined worker (kernel/unwind/cfi_worker, request 'P'):
// the worker parses the file (ElfImage: symbol tables, relocations, CFI,
// capstone) and sends the plan back; memtop decodes it with every value
// checked (decode_plan) before any probe is placed from it. The same
// make_plan runs in-process for tests, tools and the fuzzer, so the worker's
// plan and the in-process one can be compared byte for byte (encode_plan).
//
// Beside it, FileSymbols (request 'S'): what memtop asks of every file a
// target maps or a -- CMD will load before it places anything (which of
// them define an allocator, how a program is linked, CPython's symbols),
// answered by the same worker from a descriptor memtop opened.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

// What memtop asks of a file's headers and symbol tables: always the same
// names (symbol_questions()), so one answer per file serves every question.
struct FileSymbols {
    bool dynamic = false;  // has a PT_INTERP
    // The PT_INTERP path when memtop may run it (`ld.so --list`): absolute,
    // printable, shorter than PATH_MAX; "" otherwise (then only the
    // program itself is known to be loaded).
    std::string interpreter;
    // Any function symbol at all: a static program without any is stripped
    // (its malloc has no name to probe).
    bool has_functions = false;
    std::vector<LoadSegment> segments;  // PT_LOAD: an object symbol's address -> file offset
    struct Defined {
        uint16_t index = 0;     // into symbol_questions()
        bool function = false;  // as ElfImage::function() finds it; else another symbol (an object)
        uint64_t vaddr = 0;
    };
    std::vector<Defined> defined;  // the names asked that the file defines, by index, increasing

    // One of allocator_symbols() is a function here: the file is probed.
    bool defines_allocator() const;
    // `name` (one of symbol_questions()) as a defined function / any defined symbol.
    std::optional<uint64_t> function(std::string_view name) const;
    std::optional<uint64_t> symbol(std::string_view name) const;
    std::optional<uint64_t> file_offset(uint64_t vaddr) const;
};

// The names asked of every file: allocator_symbols(), then CPython's
// PyMem_SetAllocator (what the in-process sampler hooks), _PyRuntime
// (where the Python frame walk starts) and Py_FinalizeEx (where a CPython
// memtop runs is held while its Python stacks are named).
const std::vector<std::string>& symbol_questions();

// In-process: what the worker answers for `image`, opened with
// symbol_questions() as its wanted names.
FileSymbols read_file_symbols(const ElfImage& image);
// The same for the file at `path`, for tests and tools (memtop asks the
// worker). Throws MemtopError as ElfImage::open.
FileSymbols read_file_symbols(const std::string& path);

void encode_file_symbols(wire::Writer& w, const FileSymbols& s);
// Reads an answer for a file of `file_size` bytes: "" when it may be used,
// else what is wrong. Checked: segments inside the file, an interpreter
// only of a dynamic file and in the form read_file_symbols leaves it,
// indices increasing and in range, flags 0 or 1, nothing left over.
std::string decode_file_symbols(wire::Reader& r, uint64_t file_size, FileSymbols& out);

}  // namespace memtop
