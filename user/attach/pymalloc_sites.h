// Where CPython's object allocator really runs (docs/design.md, "Python's
// object allocator"). On an LTO build such as Debian 12's python3.11 the
// exported PyObject_Malloc/PyObject_Free are rarely called: their bodies
// (a check that the allocator pointer `_PyObject.malloc` is still
// pymalloc's own function, then pymalloc's free-list pop) are inlined at
// hundreds of places. This finds those places: each `cmp $impl, %reg`
// against pymalloc's function followed by a conditional jump, and from the
// fallback path (the indirect call `alloc->malloc(ctx, size)` taken when a
// hook such as tracemalloc is installed) where the call's argument is at the
// jump: a register or an immediate. Pure: reads only the image.
//
// user/python/pymalloc_probes turns the plan into probes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attach/elf_image.h"

namespace memtop {

enum class PymallocOp { Malloc, Calloc, Realloc, Free };

const char* pymalloc_op_name(PymallocOp op);

struct PymallocSite {
    PymallocOp op = PymallocOp::Malloc;
    uint64_t jump_vaddr = 0;  // the conditional jump after the check (the kernel emulates it: one trap)
    uint64_t fallback = 0;    // where the indirect call's arguments are set up
    // The call's second argument (malloc: size; free: the block; realloc:
    // the block; calloc: nelem) at the jump: a register's name ("rbx"), or
    // an immediate. Neither: the fallback computes it some other way.
    std::string reg;
    std::optional<uint64_t> imm;
    bool decoded() const { return !reg.empty() || imm.has_value(); }
};

struct PymallocPlan {
    // pymalloc's own functions, as the exported entry points compare
    // against them (0: not found).
    uint64_t impl[4] = {0, 0, 0, 0};  // by PymallocOp
    std::vector<PymallocSite> sites;  // inlined checks, by address
    // Read from pymalloc's own malloc function (0: not found): the address
    // of its `usedpools` array (the operand of `mov usedpools(,%idx,8)`)
    // and of allocate_from_new_pool (its first direct call), where a block
    // comes from when its size class has no pool with a free block.
    uint64_t usedpools = 0;
    uint64_t new_pool = 0;
    size_t count(PymallocOp op, bool decoded_only = false) const;
};

// Empty plan (no impl found) for a file that is not a CPython with
// pymalloc inlined this way.
PymallocPlan plan_pymalloc(const ElfImage& image);

}  // namespace memtop
