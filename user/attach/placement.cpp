#include "attach/placement.h"

#include <capstone/capstone.h>

#include <algorithm>
#include <map>
#include <set>

namespace memtop {

const char* program_name(ProbeProgram p) {
    switch (p) {
        case ProbeProgram::MallocEntry:
            return "malloc_entry";
        case ProbeProgram::NewEntry:
            return "new_entry";
        case ProbeProgram::CallocEntry:
            return "calloc_entry";
        case ProbeProgram::ReallocEntry:
            return "realloc_entry";
        case ProbeProgram::ReallocarrayEntry:
            return "reallocarray_entry";
        case ProbeProgram::MemalignEntry:
            return "memalign_entry";
        case ProbeProgram::PosixMemalignEntry:
            return "posix_memalign_entry";
        case ProbeProgram::FreeEntry:
            return "free_entry";
    }
    return "?";
}

const std::vector<AllocatorSymbol>& allocator_symbols() {
    using P = ProbeProgram;
    constexpr unsigned DI = 1, SI = 2, DX = 4;
    static const std::vector<AllocatorSymbol> table = {
        {"malloc", P::MallocEntry, true, DI, false},
        {"calloc", P::CallocEntry, true, DI | SI, false},
        {"realloc", P::ReallocEntry, true, DI | SI, false},
        {"reallocarray", P::ReallocarrayEntry, true, DI | SI | DX, false},
        {"posix_memalign", P::PosixMemalignEntry, true, DI | SI | DX, false},
        {"aligned_alloc", P::MemalignEntry, true, DI | SI, false},
        {"memalign", P::MemalignEntry, true, DI | SI, false},
        {"valloc", P::MallocEntry, true, DI, false},
        {"pvalloc", P::MallocEntry, true, DI, false},
        {"free", P::FreeEntry, false, DI, true},
        // operator new / new[]: plain, nothrow, aligned, aligned nothrow. No
        // return probe: it would break unwinding of bad_alloc (bpf/heap.h).
        {"_Znwm", P::NewEntry, false, DI, false},
        {"_Znam", P::NewEntry, false, DI, false},
        {"_ZnwmRKSt9nothrow_t", P::NewEntry, false, DI, false},
        {"_ZnamRKSt9nothrow_t", P::NewEntry, false, DI, false},
        {"_ZnwmSt11align_val_t", P::NewEntry, false, DI, false},
        {"_ZnamSt11align_val_t", P::NewEntry, false, DI, false},
        {"_ZnwmSt11align_val_tRKSt9nothrow_t", P::NewEntry, false, DI, false},
        {"_ZnamSt11align_val_tRKSt9nothrow_t", P::NewEntry, false, DI, false},
        // operator delete / delete[]: plain, sized, aligned, sized aligned, nothrow.
        {"_ZdlPv", P::FreeEntry, false, DI, true},
        {"_ZdaPv", P::FreeEntry, false, DI, true},
        {"_ZdlPvm", P::FreeEntry, false, DI, true},
        {"_ZdaPvm", P::FreeEntry, false, DI, true},
        {"_ZdlPvSt11align_val_t", P::FreeEntry, false, DI, true},
        {"_ZdaPvSt11align_val_t", P::FreeEntry, false, DI, true},
        {"_ZdlPvmSt11align_val_t", P::FreeEntry, false, DI, true},
        {"_ZdaPvmSt11align_val_t", P::FreeEntry, false, DI, true},
        {"_ZdlPvRKSt9nothrow_t", P::FreeEntry, false, DI, true},
        {"_ZdaPvRKSt9nothrow_t", P::FreeEntry, false, DI, true},
        {"_ZdlPvSt11align_val_tRKSt9nothrow_t", P::FreeEntry, false, DI, true},
        {"_ZdaPvSt11align_val_tRKSt9nothrow_t", P::FreeEntry, false, DI, true},
    };
    return table;
}

namespace {

// Argument registers and every alias whose write clobbers them.
bool clobbers_args(x86_reg r, unsigned arg_regs) {
    static const std::map<x86_reg, unsigned> alias = {
        {X86_REG_RDI, 1}, {X86_REG_EDI, 1}, {X86_REG_DI, 1},  {X86_REG_DIL, 1}, {X86_REG_RSI, 2},
        {X86_REG_ESI, 2}, {X86_REG_SI, 2},  {X86_REG_SIL, 2}, {X86_REG_RDX, 4}, {X86_REG_EDX, 4},
        {X86_REG_DX, 4},  {X86_REG_DL, 4},  {X86_REG_DH, 4},
    };
    auto it = alias.find(r);
    return it != alias.end() && (it->second & arg_regs);
}

bool writes_stack_pointer(x86_reg r) {
    return r == X86_REG_RSP || r == X86_REG_ESP || r == X86_REG_SP || r == X86_REG_SPL;
}

bool is_branch(const cs_insn& i) {
    for (uint8_t g = 0; g < i.detail->groups_count; g++) {
        auto grp = i.detail->groups[g];
        if (grp == CS_GRP_JUMP || grp == CS_GRP_CALL || grp == CS_GRP_RET || grp == CS_GRP_INT || grp == CS_GRP_IRET)
            return true;
    }
    return false;
}

bool is_direct_branch(const cs_insn& i) {
    const cs_x86& x = i.detail->x86;
    return is_branch(i) && x.op_count == 1 && x.operands[0].type == X86_OP_IMM;
}

// Instructions arch/x86/kernel/uprobes.c emulates instead of single-stepping:
// relative call/jmp/jcc, push of a register, and nops.
bool kernel_emulates(const cs_insn& i) {
    if (i.id == X86_INS_NOP) return true;
    if (i.id == X86_INS_PUSH) {
        const cs_x86& x = i.detail->x86;
        return x.op_count == 1 && x.operands[0].type == X86_OP_REG;
    }
    return is_direct_branch(i) && i.id != X86_INS_LOOP && i.id != X86_INS_JRCXZ && i.id != X86_INS_JECXZ;
}

bool is_endbr(const cs_insn& i) {
    // capstone 4 has no ENDBR64 id: f3 0f 1e fa decodes as a hint nop.
    return i.size == 4 && i.bytes[0] == 0xf3 && i.bytes[1] == 0x0f && i.bytes[2] == 0x1e && i.bytes[3] == 0xfa;
}

struct Capstone {
    csh h = 0;
    Capstone() {
        cs_open(CS_ARCH_X86, CS_MODE_64, &h);
        cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
    }
    ~Capstone() { cs_close(&h); }
};

std::string text(const cs_insn& i) {
    std::string s = i.mnemonic;
    if (i.op_str[0]) s += std::string(" ") + i.op_str;
    return s;
}

}  // namespace

std::vector<ProbeSite> plan_probes(const ElfImage& image) {
    Capstone cs;
    std::vector<ProbeSite> out;
    std::set<uint64_t> seen;  // aliases (aligned_alloc == memalign) share one probe
    std::map<std::string, ProbeProgram> known;
    for (const auto& s : allocator_symbols()) known[s.name] = s.program;

    for (const auto& sym : allocator_symbols()) {
        auto fn = image.function(sym.name);
        if (!fn || !seen.insert(fn->vaddr).second) continue;
        ProbeSite site;
        site.symbol = sym.name;
        site.program = sym.program;
        site.has_return = sym.has_return;
        site.func_vaddr = fn->vaddr;

        auto code = image.bytes(fn->vaddr, 64);
        cs_insn* insn = nullptr;
        size_t n = code.empty() ? 0 : cs_disasm(cs.h, code.data(), code.size(), fn->vaddr, 16, &insn);

        // A thunk: [endbr64] jmp <another allocator entry of the same kind>.
        size_t first = (n > 0 && is_endbr(insn[0])) ? 1 : 0;
        if (first < n && insn[first].id == X86_INS_JMP && is_direct_branch(insn[first])) {
            uint64_t target = insn[first].detail->x86.operands[0].imm;
            std::optional<std::string> name = image.plt_target(target);
            if (!name) {
                auto f = image.function_at(target);
                if (f && f->vaddr == target) name = f->name;
            }
            auto k = name ? known.find(*name) : known.end();
            bool same_kind = k != known.end() && (k->second == sym.program || (sym.program == ProbeProgram::FreeEntry &&
                                                                               k->second == ProbeProgram::FreeEntry));
            if (same_kind) {
                site.forwards_to = *name;
                out.push_back(site);
                if (n) cs_free(insn, n);
                continue;
            }
        }

        // Walk forward to the first emulated instruction, as long as every
        // instruction passed over leaves the arguments and rsp alone and
        // every call still reaches the probe.
        size_t chosen = 0;
        bool found = false;
        bool prev_tests_rdi = false;
        for (size_t i = 0; i < n; i++) {
            const cs_insn& in = insn[i];
            // free(NULL) takes the branch and need not trap: pass it by.
            bool null_exit = sym.null_noop && prev_tests_rdi && in.id == X86_INS_JE;
            if (kernel_emulates(in) && !null_exit) {
                chosen = i;
                found = true;
                break;
            }
            bool skippable = true;
            if (is_branch(in)) {
                // Only the `test rdi,rdi; je` of a NULL-is-a-no-op function: the
                // calls that take that branch have nothing to record.
                skippable = null_exit;
            }
            cs_regs rr, wr;
            uint8_t nr = 0, nw = 0;
            if (cs_regs_access(cs.h, &in, rr, &nr, wr, &nw) != CS_ERR_OK) skippable = false;
            for (uint8_t w = 0; w < nw && skippable; w++)
                if (clobbers_args((x86_reg)wr[w], sym.arg_regs) || writes_stack_pointer((x86_reg)wr[w]))
                    skippable = false;
            if (!skippable) break;
            prev_tests_rdi =
                in.id == X86_INS_TEST && in.detail->x86.op_count == 2 &&
                in.detail->x86.operands[0].type == X86_OP_REG && in.detail->x86.operands[0].reg == X86_REG_RDI &&
                in.detail->x86.operands[1].type == X86_OP_REG && in.detail->x86.operands[1].reg == X86_REG_RDI;
        }
        if (n) {
            const cs_insn& at = insn[found ? chosen : 0];
            site.insn_offset = at.address - fn->vaddr;
            site.emulated = found;
            site.instruction = text(at);
        }
        auto off = image.file_offset(fn->vaddr + site.insn_offset);
        if (!off) {
            if (n) cs_free(insn, n);
            continue;
        }
        site.file_offset = *off;
        if (n) cs_free(insn, n);
        out.push_back(site);
    }
    return out;
}

}  // namespace memtop
