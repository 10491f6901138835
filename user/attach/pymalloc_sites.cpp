#include "attach/pymalloc_sites.h"

#include <capstone/capstone.h>

#include <algorithm>
#include <map>

namespace memtop {

const char* pymalloc_op_name(PymallocOp op) {
    switch (op) {
        case PymallocOp::Malloc:
            return "malloc";
        case PymallocOp::Calloc:
            return "calloc";
        case PymallocOp::Realloc:
            return "realloc";
        case PymallocOp::Free:
            return "free";
    }
    return "?";
}

size_t PymallocPlan::count(PymallocOp op, bool decoded_only) const {
    size_t n = 0;
    for (const auto& s : sites)
        if (s.op == op && (!decoded_only || s.decoded())) n++;
    return n;
}

namespace {

struct Capstone {
    csh h = 0;
    Capstone() {
        cs_open(CS_ARCH_X86, CS_MODE_64, &h);
        cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
    }
    ~Capstone() { cs_close(&h); }
};

// `cmp $imm, %reg`: the immediate, else nothing.
std::optional<uint64_t> cmp_imm(const cs_insn& i) {
    if (i.id != X86_INS_CMP) return std::nullopt;
    const cs_x86& x = i.detail->x86;
    if (x.op_count != 2 || x.operands[0].type != X86_OP_REG || x.operands[1].type != X86_OP_IMM) return std::nullopt;
    return static_cast<uint64_t>(x.operands[1].imm);
}

bool is_jcc(const cs_insn& i, x86_insn id) {
    return i.id == id && i.detail->x86.op_count == 1 && i.detail->x86.operands[0].type == X86_OP_IMM;
}

// The 64-bit register a write to `r` changes (esi -> rsi), or `r`.
x86_reg widen(x86_reg r) {
    static const std::map<x86_reg, x86_reg> m = {
        {X86_REG_EAX, X86_REG_RAX},  {X86_REG_EBX, X86_REG_RBX},  {X86_REG_ECX, X86_REG_RCX},
        {X86_REG_EDX, X86_REG_RDX},  {X86_REG_ESI, X86_REG_RSI},  {X86_REG_EDI, X86_REG_RDI},
        {X86_REG_EBP, X86_REG_RBP},  {X86_REG_R8D, X86_REG_R8},   {X86_REG_R9D, X86_REG_R9},
        {X86_REG_R10D, X86_REG_R10}, {X86_REG_R11D, X86_REG_R11}, {X86_REG_R12D, X86_REG_R12},
        {X86_REG_R13D, X86_REG_R13}, {X86_REG_R14D, X86_REG_R14}, {X86_REG_R15D, X86_REG_R15},
    };
    auto it = m.find(r);
    return it == m.end() ? r : it->second;
}

// Follows the fallback from `at` to its indirect call and says where rsi
// comes from at `at`. Up to 24 instructions, through up to 2 direct jumps.
void decode_fallback(const ElfImage& image, const Capstone& cs, uint64_t at, PymallocSite& site) {
    std::map<x86_reg, bool> written;  // registers changed since `at`
    x86_reg rsi_from = X86_REG_RSI;   // rsi itself until an instruction moves another register in
    std::optional<uint64_t> rsi_imm;
    bool rsi_unknown = false;
    int jumps = 0, seen = 0;
    while (seen < 24) {
        auto code = image.bytes(at, 16);
        cs_insn* in = nullptr;
        if (code.empty() || cs_disasm(cs.h, code.data(), code.size(), at, 1, &in) != 1) return;
        const cs_insn& i = in[0];
        seen++;
        const cs_x86& x = i.detail->x86;
        // The indirect call, or a tail call through the pointer.
        bool through_reg = x.op_count == 1 && x.operands[0].type == X86_OP_REG;
        if (i.id == X86_INS_CALL || (i.id == X86_INS_JMP && through_reg)) {
            cs_free(in, 1);
            if (!through_reg || rsi_unknown) return;
            if (rsi_imm) {
                site.imm = rsi_imm;
            } else {
                site.reg = cs_reg_name(cs.h, rsi_from);
            }
            return;
        }
        if (i.id == X86_INS_JMP && x.op_count == 1 && x.operands[0].type == X86_OP_IMM && jumps < 2) {
            jumps++;
            at = static_cast<uint64_t>(x.operands[0].imm);
            cs_free(in, 1);
            continue;
        }
        bool branch = false;
        for (uint8_t g = 0; g < i.detail->groups_count; g++)
            if (i.detail->groups[g] == CS_GRP_JUMP || i.detail->groups[g] == CS_GRP_RET) branch = true;
        if (branch) {
            cs_free(in, 1);
            return;  // a conditional path: not a straight fallback
        }
        cs_regs rr, wr;
        uint8_t nr = 0, nw = 0;
        if (cs_regs_access(cs.h, &i, rr, &nr, wr, &nw) != CS_ERR_OK) {
            cs_free(in, 1);
            return;
        }
        bool writes_rsi = false;
        for (uint8_t w = 0; w < nw; w++)
            if (widen(static_cast<x86_reg>(wr[w])) == X86_REG_RSI) writes_rsi = true;
        if (writes_rsi) {
            rsi_from = X86_REG_RSI;
            rsi_imm.reset();
            rsi_unknown = true;
            if (i.id == X86_INS_MOV && x.op_count == 2 && x.operands[0].type == X86_OP_REG) {
                if (x.operands[1].type == X86_OP_IMM) {
                    rsi_imm = static_cast<uint64_t>(x.operands[1].imm);
                    rsi_unknown = false;
                } else if (x.operands[1].type == X86_OP_REG && x.operands[1].size == 8 &&
                           !written[widen(x.operands[1].reg)]) {
                    rsi_from = widen(x.operands[1].reg);
                    rsi_unknown = false;
                }
            }
        }
        for (uint8_t w = 0; w < nw; w++) written[widen(static_cast<x86_reg>(wr[w]))] = true;
        // A register moved into rsi and then changed: rsi keeps the old value,
        // which is still the register's value at the jump.
        at = i.address + i.size;
        cs_free(in, 1);
    }
}

// In pymalloc's malloc function: the usedpools array and
// allocate_from_new_pool (see PymallocPlan).
void decode_malloc_fn(const ElfImage& image, const Capstone& cs, uint64_t fn, PymallocPlan& plan) {
    auto range = image.code_range(fn);
    if (!range) return;
    auto code = image.bytes(fn, std::min<uint64_t>(range->second - fn, 512));
    cs_insn* in = nullptr;
    size_t n = code.empty() ? 0 : cs_disasm(cs.h, code.data(), code.size(), fn, 0, &in);
    for (size_t i = 0; i < n; i++) {
        const cs_x86& x = in[i].detail->x86;
        for (uint8_t o = 0; o < x.op_count && !plan.usedpools; o++) {
            const cs_x86_op& op = x.operands[o];
            if (in[i].id == X86_INS_MOV && op.type == X86_OP_MEM && op.mem.base == X86_REG_INVALID &&
                op.mem.index != X86_REG_INVALID && op.mem.scale == 8 && op.mem.disp > 0 &&
                !image.code_range(static_cast<uint64_t>(op.mem.disp)))
                plan.usedpools = static_cast<uint64_t>(op.mem.disp);
        }
        if (in[i].id == X86_INS_CALL && x.op_count == 1 && x.operands[0].type == X86_OP_IMM && !plan.new_pool) {
            auto target = static_cast<uint64_t>(x.operands[0].imm);
            // A function of this file, not a PLT stub (malloc@plt comes later).
            if (image.code_range(target) && image.code_range(target)->first == target) plan.new_pool = target;
        }
        if (plan.usedpools && plan.new_pool) break;
    }
    if (n) cs_free(in, n);
}

}  // namespace

PymallocPlan plan_pymalloc(const ElfImage& image) {
    Capstone cs;
    PymallocPlan plan;
    const char* entries[4] = {"PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc", "PyObject_Free"};
    std::map<uint64_t, PymallocOp> impls;
    for (int op = 0; op < 4; op++) {
        auto fn = image.function(entries[op]);
        if (!fn) continue;
        auto code = image.bytes(fn->vaddr, 64);
        cs_insn* in = nullptr;
        size_t n = code.empty() ? 0 : cs_disasm(cs.h, code.data(), code.size(), fn->vaddr, 16, &in);
        for (size_t i = 0; i < n; i++) {
            auto imm = cmp_imm(in[i]);
            // The devirtualization check compares with a function of this file.
            if (imm && image.code_range(*imm) && image.code_range(*imm)->first == *imm) {
                plan.impl[op] = *imm;
                impls[*imm] = static_cast<PymallocOp>(op);
                break;
            }
        }
        if (n) cs_free(in, n);
    }
    if (impls.empty()) return plan;
    if (plan.impl[int(PymallocOp::Malloc)]) decode_malloc_fn(image, cs, plan.impl[int(PymallocOp::Malloc)], plan);

    for (const auto& [lo, hi] : image.code_ranges()) {
        auto code = image.bytes(lo, hi - lo);
        if (code.size() != hi - lo) continue;
        cs_insn* in = nullptr;
        size_t n = cs_disasm(cs.h, code.data(), code.size(), lo, 0, &in);
        for (size_t i = 0; i + 1 < n; i++) {
            auto imm = cmp_imm(in[i]);
            if (!imm) continue;
            auto it = impls.find(*imm);
            if (it == impls.end()) continue;
            const cs_insn& j = in[i + 1];
            bool jne = is_jcc(j, X86_INS_JNE), je = is_jcc(j, X86_INS_JE);
            if (!jne && !je) continue;
            PymallocSite site;
            site.op = it->second;
            site.jump_vaddr = j.address;
            // jne: the fallback is the jump's target; je: the fall-through.
            site.fallback = jne ? static_cast<uint64_t>(j.detail->x86.operands[0].imm) : j.address + j.size;
            decode_fallback(image, cs, site.fallback, site);
            plan.sites.push_back(site);
        }
        if (n) cs_free(in, n);
    }
    return plan;
}

}  // namespace memtop
