#include "kernel/pymalloc_probes.h"

#include <map>

#include "memtop.h"

namespace memtop {

namespace {

uint32_t reg_code(const std::string& r) {
    static const std::map<std::string, uint32_t> m = {
        {"rax", MEMTOP_PYM_REG_RAX}, {"rbx", MEMTOP_PYM_REG_RBX}, {"rcx", MEMTOP_PYM_REG_RCX},
        {"rdx", MEMTOP_PYM_REG_RDX}, {"rsi", MEMTOP_PYM_REG_RSI}, {"rdi", MEMTOP_PYM_REG_RDI},
        {"rbp", MEMTOP_PYM_REG_RBP}, {"r8", MEMTOP_PYM_REG_R8},   {"r9", MEMTOP_PYM_REG_R9},
        {"r10", MEMTOP_PYM_REG_R10}, {"r11", MEMTOP_PYM_REG_R11}, {"r12", MEMTOP_PYM_REG_R12},
        {"r13", MEMTOP_PYM_REG_R13}, {"r14", MEMTOP_PYM_REG_R14}, {"r15", MEMTOP_PYM_REG_R15},
    };
    auto it = m.find(r);
    return it == m.end() ? 0 : it->second;
}

}  // namespace

PymallocProbes pymalloc_probes(const FilePlan& file) {
    PymallocProbes out;
    const PymallocPlan& plan = file.pymalloc;
    uint64_t malloc_fn = plan.impl[int(PymallocOp::Malloc)], free_fn = plan.impl[int(PymallocOp::Free)];
    if (!malloc_fn || !free_fn || !plan.usedpools || !plan.new_pool) {
        out.problem = "pymalloc's functions not found in it (not a pymalloc build memtop can read)";
        return out;
    }
    // A position-dependent executable: its link-time addresses are the
    // process's, so the cookie can carry usedpools' address as it is.
    if (!file.position_dependent || plan.usedpools >> 32) {
        out.problem = "a position-independent CPython (its Python domain is not supported yet)";
        return out;
    }
    auto add = [&](uint64_t vaddr, uint64_t cookie) {
        // In the file's code: the plan came from the worker (cfi_worker.h).
        auto off = file.file_offset(vaddr);
        if (!off || !file.in_code(*off)) return false;
        out.offsets.push_back(*off);
        out.cookies.push_back(cookie);
        return true;
    };
    size_t calloc_sites = 0, undecoded = 0;
    for (const auto& s : plan.sites) {
        if (s.op == PymallocOp::Realloc) continue;
        if (s.op == PymallocOp::Calloc) {
            calloc_sites++;
            continue;
        }
        uint32_t reg = s.reg.empty() ? 0 : reg_code(s.reg);
        bool usable = reg || (s.imm && *s.imm <= 0xffffff);
        uint32_t kind = s.op == PymallocOp::Malloc ? MEMTOP_PYM_MALLOC_SITE : MEMTOP_PYM_FREE_SITE;
        if (!usable || !add(s.jump_vaddr, MEMTOP_PYM_COOKIE(kind, reg, s.imm.value_or(0), plan.usedpools))) {
            undecoded++;
            continue;
        }
        out.sites++;
    }
    out.skipped = calloc_sites + undecoded;
    if (calloc_sites) out.skipped_why = std::to_string(calloc_sites) + " calloc";
    if (undecoded) out.skipped_why += (out.skipped_why.empty() ? "" : ", ") + std::to_string(undecoded) + " undecoded";
    if (!add(malloc_fn, MEMTOP_PYM_COOKIE(MEMTOP_PYM_MALLOC_FN, 0, 0, plan.usedpools)) ||
        !add(free_fn, MEMTOP_PYM_COOKIE(MEMTOP_PYM_FREE_FN, 0, 0, plan.usedpools))) {
        out = PymallocProbes{};
        out.problem = "pymalloc's functions are outside the file's segments";
        return out;
    }
    auto np = file.file_offset(plan.new_pool);
    if (!np || !file.in_code(*np)) {
        out = PymallocProbes{};
        out.problem = "allocate_from_new_pool is outside the file's segments";
        return out;
    }
    out.new_pool_offset = *np;
    return out;
}

}  // namespace memtop
