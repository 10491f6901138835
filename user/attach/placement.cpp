#include "attach/placement.h"

#include <capstone/capstone.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace memtop {

const char* program_name(ProbeProgram p) {
    switch (p) {
        case ProbeProgram::MallocEntry:
            return "malloc_entry";
        case ProbeProgram::NewEntry:
            return "new_entry";
        case ProbeProgram::NewOwnEntry:
            return "new_own_entry";
        case ProbeProgram::NewNOwnEntry:
            return "new_n_own_entry";
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
        case ProbeProgram::ExceptionEntry:
            return "exception_entry";
        case ProbeProgram::SampledAllocEntry:
            return "sampled_alloc_entry";
        case ProbeProgram::SampledFreeEntry:
            return "sampled_free_entry";
        case ProbeProgram::SampledPyAllocEntry:
            return "py_sampled_alloc_entry";
        case ProbeProgram::SampledPyFreeEntry:
            return "py_sampled_free_entry";
        case ProbeProgram::ReallocfEntry:
            return "reallocf_entry";
        case ProbeProgram::StrdupEntry:
            return "strdup_entry";
        case ProbeProgram::RealpathEntry:
            return "realpath_entry";
        case ProbeProgram::ExpandEntry:
            return "expand_entry";
        case ProbeProgram::XallocxEntry:
            return "xallocx_entry";
        case ProbeProgram::MiHeapNewEntry:
            return "mi_heap_new_entry";
        case ProbeProgram::MiHeapDestroyEntry:
            return "mi_heap_destroy_entry";
        case ProbeProgram::MiHeapDeleteEntry:
            return "mi_heap_delete_entry";
        case ProbeProgram::MiHeapSetDefaultEntry:
            return "mi_heap_set_default_entry";
        case ProbeProgram::MiHeapMallocEntry:
            return "mi_heap_malloc_entry";
        case ProbeProgram::MiHeapCallocEntry:
            return "mi_heap_calloc_entry";
        case ProbeProgram::MiHeapReallocEntry:
            return "mi_heap_realloc_entry";
        case ProbeProgram::MiHeapReallocfEntry:
            return "mi_heap_reallocf_entry";
        case ProbeProgram::MiHeapReallocnEntry:
            return "mi_heap_reallocn_entry";
        case ProbeProgram::MiHeapStrdupEntry:
            return "mi_heap_strdup_entry";
        case ProbeProgram::MiHeapRealpathEntry:
            return "mi_heap_realpath_entry";
    }
    return "?";
}

const std::vector<AllocatorSymbol>& allocator_symbols() {
    using P = ProbeProgram;
    constexpr unsigned DI = 1, SI = 2, DX = 4, CX = 8;
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
        // The preloaded sampler's probe points (user/sampler/sampler.c): in
        // its file nothing else is probed (plan_probes).
        {"memtop_sampled_alloc", P::SampledAllocEntry, false, DI | SI | DX, false},
        {"memtop_sampled_free", P::SampledFreeEntry, false, DI | SI, false},
        // Its Python-domain points (--python-objects), probed where their
        // programs are loaded.
        {"memtop_sampled_py_alloc", P::SampledPyAllocEntry, false, DI | SI | DX, false},
        {"memtop_sampled_py_free", P::SampledPyFreeEntry, false, DI | SI, false},
        // jemalloc's own API (Rust's jemallocator allocates through it):
        // mallocx(size, flags), rallocx(ptr, size, flags), sdallocx(ptr, size,
        // flags), dallocx(ptr, flags).
        {"mallocx", P::MallocEntry, true, DI, false},
        {"rallocx", P::ReallocEntry, true, DI | SI, false},
        {"sdallocx", P::FreeEntry, false, DI, true},
        {"dallocx", P::FreeEntry, false, DI, true},
        // xallocx(ptr, size, extra, flags): resizes in place, never moves.
        {"xallocx", P::XallocxEntry, true, DI | SI | DX, false},
        // tcmalloc's own names (gperftools/tcmalloc.h). Debian's libtcmalloc
        // makes most of them aliases of malloc, free, new...: those are
        // probed once, under the first name. Its debug builds define them
        // as functions of their own.
        {"tc_malloc", P::MallocEntry, true, DI, false},
        {"tc_malloc_skip_new_handler", P::MallocEntry, true, DI, false},
        {"tc_calloc", P::CallocEntry, true, DI | SI, false},
        {"tc_realloc", P::ReallocEntry, true, DI | SI, false},
        {"tc_memalign", P::MemalignEntry, true, DI | SI, false},
        {"tc_posix_memalign", P::PosixMemalignEntry, true, DI | SI | DX, false},
        {"tc_valloc", P::MallocEntry, true, DI, false},
        {"tc_pvalloc", P::MallocEntry, true, DI, false},
        {"tc_free", P::FreeEntry, false, DI, true},
        {"tc_cfree", P::FreeEntry, false, DI, true},
        {"tc_free_sized", P::FreeEntry, false, DI, true},
        {"tc_delete", P::FreeEntry, false, DI, true},
        {"tc_deletearray", P::FreeEntry, false, DI, true},
        {"tc_delete_sized", P::FreeEntry, false, DI, true},
        {"tc_deletearray_sized", P::FreeEntry, false, DI, true},
        {"tc_delete_nothrow", P::FreeEntry, false, DI, true},
        {"tc_deletearray_nothrow", P::FreeEntry, false, DI, true},
        {"tc_delete_aligned", P::FreeEntry, false, DI, true},
        {"tc_deletearray_aligned", P::FreeEntry, false, DI, true},
        {"tc_delete_sized_aligned", P::FreeEntry, false, DI, true},
        {"tc_deletearray_sized_aligned", P::FreeEntry, false, DI, true},
        {"tc_delete_aligned_nothrow", P::FreeEntry, false, DI, true},
        {"tc_deletearray_aligned_nothrow", P::FreeEntry, false, DI, true},
        // mimalloc's own API (mimalloc.h). malloc, calloc, realloc, free and
        // new are aliases of mi_malloc, mi_calloc, mi_realloc, mi_free and
        // mi_new in Debian's build; the rest are functions of their own.
        // Argument layouts: mi_malloc_aligned(size, align) is malloc's (size
        // in rdi), mi_calloc_aligned(n, size, align) calloc's,
        // mi_realloc_aligned(p, size, align) realloc's, mi_recalloc(p, n,
        // size) reallocarray's. Not probed: mi_new_realloc(n) (it calls
        // mi_realloc, which counts it). mi_strdup/mi_strndup/mi_realpath
        // allocate inside without calling a probed entry point: their block
        // is taken at their return. Debian's mi_strdup jumps to
        // mi_heap_strdup, mi_realloc to mi_heap_realloc...: a call through
        // both is one call (bpf/heap.h, begin_call).
        {"mi_malloc", P::MallocEntry, true, DI, false},
        {"mi_zalloc", P::MallocEntry, true, DI, false},
        {"mi_malloc_small", P::MallocEntry, true, DI, false},
        {"mi_zalloc_small", P::MallocEntry, true, DI, false},
        {"mi_malloc_aligned", P::MallocEntry, true, DI, false},
        {"mi_malloc_aligned_at", P::MallocEntry, true, DI, false},
        {"mi_zalloc_aligned", P::MallocEntry, true, DI, false},
        {"mi_zalloc_aligned_at", P::MallocEntry, true, DI, false},
        {"mi_valloc", P::MallocEntry, true, DI, false},
        {"mi_pvalloc", P::MallocEntry, true, DI, false},
        {"mi_calloc", P::CallocEntry, true, DI | SI, false},
        {"mi_mallocn", P::CallocEntry, true, DI | SI, false},
        {"mi_calloc_aligned", P::CallocEntry, true, DI | SI, false},
        {"mi_calloc_aligned_at", P::CallocEntry, true, DI | SI, false},
        {"mi_memalign", P::MemalignEntry, true, DI | SI, false},
        {"mi_aligned_alloc", P::MemalignEntry, true, DI | SI, false},
        {"mi_posix_memalign", P::PosixMemalignEntry, true, DI | SI | DX, false},
        {"mi_realloc", P::ReallocEntry, true, DI | SI, false},
        {"mi_rezalloc", P::ReallocEntry, true, DI | SI, false},
        // BSD's reallocf: a failed one frees the block.
        {"mi_reallocf", P::ReallocfEntry, true, DI | SI, false},
        {"mi_realloc_aligned", P::ReallocEntry, true, DI | SI, false},
        {"mi_realloc_aligned_at", P::ReallocEntry, true, DI | SI, false},
        {"mi_rezalloc_aligned", P::ReallocEntry, true, DI | SI, false},
        {"mi_rezalloc_aligned_at", P::ReallocEntry, true, DI | SI, false},
        {"mi_reallocn", P::ReallocarrayEntry, true, DI | SI | DX, false},
        {"mi_reallocarray", P::ReallocarrayEntry, true, DI | SI | DX, false},
        {"mi_recalloc", P::ReallocarrayEntry, true, DI | SI | DX, false},
        {"mi_recalloc_aligned", P::ReallocarrayEntry, true, DI | SI | DX, false},
        {"mi_recalloc_aligned_at", P::ReallocarrayEntry, true, DI | SI | DX, false},
        {"mi_free", P::FreeEntry, false, DI, true},
        {"mi_cfree", P::FreeEntry, false, DI, true},
        {"mi_free_size", P::FreeEntry, false, DI, true},
        {"mi_free_aligned", P::FreeEntry, false, DI, true},
        {"mi_free_size_aligned", P::FreeEntry, false, DI, true},
        {"mi_strdup", P::StrdupEntry, true, 0, false},
        {"mi_strndup", P::StrdupEntry, true, 0, false},
        {"mi_realpath", P::RealpathEntry, true, SI, false},
        {"mi_expand", P::ExpandEntry, true, DI | SI, false},
        // The heap API: mi_heap_X(heap, args of mi_X). Blocks of a heap
        // memtop saw made carry it, so mi_heap_destroy can free them
        // (bpf/heap.h). mi_heap_destroy and mi_heap_delete of NULL do nothing.
        {"mi_heap_new", P::MiHeapNewEntry, true, 0, false},
        {"mi_heap_new_in_arena", P::MiHeapNewEntry, true, 0, false},
        {"mi_heap_destroy", P::MiHeapDestroyEntry, false, DI, true},
        {"mi_heap_delete", P::MiHeapDeleteEntry, false, DI, true},
        {"mi_heap_set_default", P::MiHeapSetDefaultEntry, false, DI, false},
        {"mi_heap_malloc", P::MiHeapMallocEntry, true, DI | SI, false},
        {"mi_heap_zalloc", P::MiHeapMallocEntry, true, DI | SI, false},
        {"mi_heap_malloc_small", P::MiHeapMallocEntry, true, DI | SI, false},
        {"mi_heap_zalloc_small", P::MiHeapMallocEntry, true, DI | SI, false},
        {"mi_heap_malloc_aligned", P::MiHeapMallocEntry, true, DI | SI, false},
        {"mi_heap_malloc_aligned_at", P::MiHeapMallocEntry, true, DI | SI, false},
        {"mi_heap_zalloc_aligned", P::MiHeapMallocEntry, true, DI | SI, false},
        {"mi_heap_zalloc_aligned_at", P::MiHeapMallocEntry, true, DI | SI, false},
        {"mi_heap_calloc", P::MiHeapCallocEntry, true, DI | SI | DX, false},
        {"mi_heap_mallocn", P::MiHeapCallocEntry, true, DI | SI | DX, false},
        {"mi_heap_calloc_aligned", P::MiHeapCallocEntry, true, DI | SI | DX, false},
        {"mi_heap_calloc_aligned_at", P::MiHeapCallocEntry, true, DI | SI | DX, false},
        {"mi_heap_realloc", P::MiHeapReallocEntry, true, DI | SI | DX, false},
        {"mi_heap_rezalloc", P::MiHeapReallocEntry, true, DI | SI | DX, false},
        {"mi_heap_realloc_aligned", P::MiHeapReallocEntry, true, DI | SI | DX, false},
        {"mi_heap_realloc_aligned_at", P::MiHeapReallocEntry, true, DI | SI | DX, false},
        {"mi_heap_rezalloc_aligned", P::MiHeapReallocEntry, true, DI | SI | DX, false},
        {"mi_heap_rezalloc_aligned_at", P::MiHeapReallocEntry, true, DI | SI | DX, false},
        {"mi_heap_reallocf", P::MiHeapReallocfEntry, true, DI | SI | DX, false},
        {"mi_heap_reallocn", P::MiHeapReallocnEntry, true, DI | SI | DX | CX, false},
        {"mi_heap_recalloc", P::MiHeapReallocnEntry, true, DI | SI | DX | CX, false},
        {"mi_heap_recalloc_aligned", P::MiHeapReallocnEntry, true, DI | SI | DX | CX, false},
        {"mi_heap_recalloc_aligned_at", P::MiHeapReallocnEntry, true, DI | SI | DX | CX, false},
        {"mi_heap_strdup", P::MiHeapStrdupEntry, true, DI, false},
        {"mi_heap_strndup", P::MiHeapStrdupEntry, true, DI, false},
        {"mi_heap_realpath", P::MiHeapRealpathEntry, true, DI | DX, false},
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
        // tcmalloc's and mimalloc's own operator new functions (aliases of
        // the operators above where the file makes them so).
        {"tc_new", P::NewEntry, false, DI, false},
        {"tc_newarray", P::NewEntry, false, DI, false},
        {"tc_new_nothrow", P::NewEntry, false, DI, false},
        {"tc_newarray_nothrow", P::NewEntry, false, DI, false},
        {"tc_new_aligned", P::NewEntry, false, DI, false},
        {"tc_newarray_aligned", P::NewEntry, false, DI, false},
        {"tc_new_aligned_nothrow", P::NewEntry, false, DI, false},
        {"tc_newarray_aligned_nothrow", P::NewEntry, false, DI, false},
        {"mi_new", P::NewEntry, false, DI, false},
        {"mi_new_nothrow", P::NewEntry, false, DI, false},
        {"mi_new_aligned", P::NewEntry, false, DI, false},
        {"mi_new_aligned_nothrow", P::NewEntry, false, DI, false},
        // mi_new_n(count, size): mi_stl_allocator's allocate.
        {"mi_new_n", P::NewNOwnEntry, false, DI | SI, false},
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
        // An operator new that throws bad_alloc never returns: the exception
        // is allocated first, and that ends the call in flight (bpf/heap.h).
        {"__cxa_allocate_exception", P::ExceptionEntry, false, 0, false},
    };
    return table;
}

namespace {

// Argument registers and every alias whose write clobbers them.
bool clobbers_args(x86_reg r, unsigned arg_regs) {
    static const std::map<x86_reg, unsigned> alias = {
        {X86_REG_RDI, 1}, {X86_REG_EDI, 1}, {X86_REG_DI, 1},  {X86_REG_DIL, 1}, {X86_REG_RSI, 2}, {X86_REG_ESI, 2},
        {X86_REG_SI, 2},  {X86_REG_SIL, 2}, {X86_REG_RDX, 4}, {X86_REG_EDX, 4}, {X86_REG_DX, 4},  {X86_REG_DL, 4},
        {X86_REG_DH, 4},  {X86_REG_RCX, 8}, {X86_REG_ECX, 8}, {X86_REG_CX, 8},  {X86_REG_CL, 8},  {X86_REG_CH, 8},
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

std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
    return b;
}

std::string text(const cs_insn& i) {
    std::string s = i.mnemonic;
    if (i.op_str[0]) s += std::string(" ") + i.op_str;
    return s;
}

// How an operator new returns its block. libstdc++'s (and libc++'s) call
// malloc or aligned_alloc, whose probes see the block on new's behalf
// (bpf/heap.h, begin_call). jemalloc's, tcmalloc's and mimalloc's allocate
// themselves; their result is taken at every `ret` by which a call can
// leave: those of the function, and of the code it jumps to (tail calls,
// .cold parts), found by sweeping each piece of code whole within the
// bounds the call frame information gives it.
struct NewPlan {
    bool calls_malloc = false;   // its body calls a malloc-family entry: adopt that call's block
    std::vector<uint64_t> rets;  // vaddrs of the ret instructions
    std::string error;           // why the returns cannot all be found
};

NewPlan scan_new(const ElfImage& image, const Capstone& cs, uint64_t entry,
                 const std::map<std::string, ProbeProgram>& known) {
    constexpr size_t kMaxPieces = 16, kMaxBytes = 256 << 10, kMaxRets = 64;
    NewPlan plan;
    std::vector<uint64_t> todo{entry};
    std::set<uint64_t> swept;  // piece starts
    size_t bytes_seen = 0;
    auto fail = [&](std::string why) {
        if (plan.error.empty()) plan.error = std::move(why);
    };
    // What a direct branch to `target` reaches: an allocator entry memtop
    // probes (by name), another function of this file, or one of another file.
    struct Target {
        std::optional<ProbeProgram> allocator;
        std::optional<uint64_t> local;  // code of this file to follow
        std::string external;           // a PLT stub of a function defined elsewhere
    };
    auto resolve = [&](uint64_t target) {
        Target t;
        std::optional<std::string> name = image.plt_target(target);
        if (!name) {
            auto f = image.function_at(target);
            if (f && f->vaddr == target) name = f->name;
        }
        if (name) {
            auto k = known.find(*name);
            if (k != known.end()) t.allocator = k->second;
            if (auto f = image.function(*name))
                t.local = f->vaddr;
            else if (image.plt_target(target))
                t.external = *name;
        }
        if (!name || (!t.local && t.external.empty())) t.local = target;
        return t;
    };
    while (!todo.empty() && plan.error.empty()) {
        uint64_t at = todo.back();
        todo.pop_back();
        auto range = image.code_range(at);
        if (!range) {
            fail("no call frame information covers its code at " + hex(at));
            break;
        }
        if (!swept.insert(range->first).second) continue;
        if (swept.size() > kMaxPieces) {
            fail("its code spans more than " + std::to_string(kMaxPieces) + " functions");
            break;
        }
        uint64_t len = range->second - range->first;
        bytes_seen += len;
        if (bytes_seen > kMaxBytes) {
            fail("its code is larger than " + std::to_string(kMaxBytes >> 10) + " KiB");
            break;
        }
        auto code = image.bytes(range->first, len);
        if (code.size() != len) {
            fail("its code is not all in the file");
            break;
        }
        cs_insn* insn = nullptr;
        size_t n = cs_disasm(cs.h, code.data(), code.size(), range->first, 0, &insn);
        uint64_t decoded = n ? insn[n - 1].address + insn[n - 1].size - range->first : 0;
        if (decoded != len) fail("its code does not decode as whole instructions");
        for (size_t i = 0; i < n && plan.error.empty(); i++) {
            const cs_insn& in = insn[i];
            if (in.id == X86_INS_RET) {
                plan.rets.push_back(in.address);
                continue;
            }
            bool call = in.id == X86_INS_CALL;
            if (!is_branch(in) || in.id == X86_INS_RET) continue;
            if (!is_direct_branch(in)) {
                // An indirect call returns here; an indirect jump may leave
                // for code no sweep can name.
                if (!call && in.id == X86_INS_JMP) fail("it jumps through a pointer (at " + hex(in.address) + ")");
                continue;
            }
            uint64_t target = in.detail->x86.operands[0].imm;
            if (target >= range->first && target < range->second) continue;
            Target t = resolve(target);
            bool allocation = t.allocator &&
                              (*t.allocator == ProbeProgram::MallocEntry || *t.allocator == ProbeProgram::CallocEntry ||
                               *t.allocator == ProbeProgram::MemalignEntry);
            if (call) {
                // Only new's own body counts: jemalloc's fast path returns its
                // own block and only a slow path elsewhere calls malloc.
                if (allocation && range->first <= entry && entry < range->second) plan.calls_malloc = true;
                continue;
            }
            // A jump out of this piece: a tail call, or a jump to a .cold
            // part. A tail call into a probed allocation entry returns through
            // that entry's return probe with new's stack pointer, which
            // counts it (alloc_return); anything else is swept in turn.
            if (allocation) continue;
            if (!t.external.empty()) {
                fail("it tail-calls " + t.external + " in another file");
                continue;
            }
            todo.push_back(*t.local);
        }
        if (n) cs_free(insn, n);
        if (plan.rets.size() > kMaxRets) fail("it returns from more than " + std::to_string(kMaxRets) + " places");
    }
    return plan;
}

}  // namespace

std::vector<ProbeSite> plan_probes(const ElfImage& image) {
    Capstone cs;
    std::vector<ProbeSite> out;
    std::set<uint64_t> seen;  // aliases (aligned_alloc == memalign) share one probe
    std::map<std::string, ProbeProgram> known;
    for (const auto& s : allocator_symbols()) known[s.name] = s.program;

    // memtop's sampler: its two probe points, never its malloc family (the
    // calls it forwards are the next allocator's, counted there or sampled).
    bool sampler = image.function("memtop_sampled_alloc").has_value();
    for (const auto& sym : allocator_symbols()) {
        bool sampler_symbol =
            sym.program == ProbeProgram::SampledAllocEntry || sym.program == ProbeProgram::SampledFreeEntry ||
            sym.program == ProbeProgram::SampledPyAllocEntry || sym.program == ProbeProgram::SampledPyFreeEntry;
        if (sampler != sampler_symbol) continue;
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

        if (sym.program == ProbeProgram::NewEntry || sym.program == ProbeProgram::NewNOwnEntry) {
            NewPlan np = scan_new(image, cs, fn->vaddr, known);
            if (np.calls_malloc && sym.program == ProbeProgram::NewNOwnEntry) {
                // A new_n that allocates through malloc is counted by that
                // malloc's probes, at new_n's frame: nothing to probe.
                if (n) cs_free(insn, n);
                continue;
            }
            if (!np.calls_malloc) {
                if (sym.program == ProbeProgram::NewEntry) site.program = ProbeProgram::NewOwnEntry;
                if (np.error.empty() && np.rets.empty()) np.error = "it has no return instruction";
                for (uint64_t r : np.rets) {
                    auto off = image.file_offset(r);
                    if (!off)
                        np.error = "a return instruction is not in the file";
                    else
                        site.return_sites.push_back(*off);
                }
                if (!np.error.empty()) {
                    site.return_sites.clear();
                    site.not_traced = "memtop cannot find every return of " + std::string(sym.name) + ": " + np.error;
                }
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
