#include "kernel/unwind/cfi_table.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "attach/fde_ranges.h"
#include "util/errors.h"
#include "util/unique_fd.h"

namespace memtop {

namespace {

constexpr int kRegRbp = 6, kRegRsp = 7, kRegRa = 16;

// Released in reverse order of acquisition on every path out, the throws
// included: memtop builds a table for each file its targets map, all session
// long. The CFI of .eh_frame (dwarf_getcfi_elf) is the caller's to end; that
// of .debug_frame belongs to its Dwarf. The descriptor is the caller's.
struct ElfFile {
    Elf* elf = nullptr;
    Dwarf* dw = nullptr;
    Dwarf_CFI* eh_cfi = nullptr;
    ~ElfFile() {
        if (eh_cfi) dwarf_cfi_end(eh_cfi);
        if (dw) dwarf_end(dw);
        if (elf) elf_end(elf);
    }
};

// Executable PT_LOAD segments: rows are keyed by file offset, which is what
// the kernel's vma gives (vm_pgoff), so link-time addresses are converted.
struct ExecSegment {
    uint64_t vaddr, memsz, offset;
};

// A register rule from libdw -> the saved-register offset from the CFA, in
// bytes. Returns false for rules other than "saved at CFA + N".
bool saved_at_cfa_offset(const Dwarf_Op* ops, size_t nops, int64_t& off) {
    if (nops == 1 && ops[0].atom == DW_OP_call_frame_cfa) {
        off = 0;
        return true;
    }
    if (nops == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst) {
        off = (int64_t)ops[1].number;
        return true;
    }
    if (nops == 3 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_consts && ops[2].atom == DW_OP_plus) {
        off = (int64_t)ops[1].number;
        return true;
    }
    return false;
}

memtop_unwind_row row_for(Dwarf_Frame* frame, uint32_t off) {
    memtop_unwind_row r{};
    r.off = off;
    r.type = MEMTOP_ROW_UNSUPPORTED;

    Dwarf_Op ra_mem[3], *ra_ops = nullptr;
    size_t ra_n = 0;
    if (dwarf_frame_register(frame, kRegRa, ra_mem, &ra_ops, &ra_n) == 0 && ra_n == 0 && ra_ops == ra_mem) {
        r.type = MEMTOP_ROW_OUTERMOST;  // "undefined": nothing called this frame
        return r;
    }

    Dwarf_Op* cfa_ops = nullptr;
    size_t cfa_n = 0;
    if (dwarf_frame_cfa(frame, &cfa_ops, &cfa_n) != 0 || cfa_n == 0) return r;
    // libdw hands a register+offset CFA rule back as one DW_OP_bregx.
    int cfa_reg = -1;
    int64_t o = 0;
    if (cfa_n == 1 && cfa_ops[0].atom == DW_OP_bregx) {
        cfa_reg = (int)cfa_ops[0].number;
        o = (int64_t)cfa_ops[0].number2;
    } else if (cfa_n == 1 && cfa_ops[0].atom >= DW_OP_breg0 && cfa_ops[0].atom <= DW_OP_breg31) {
        cfa_reg = cfa_ops[0].atom - DW_OP_breg0;
        o = (int64_t)cfa_ops[0].number;
    }
    if (cfa_reg == kRegRsp || cfa_reg == kRegRbp) {
        if (o < 0 || (o & 7) || o / 8 > MEMTOP_ROW_CFA_MAX) return r;
        memtop_row_set(&r, cfa_reg == kRegRsp ? MEMTOP_ROW_CFA_RSP : MEMTOP_ROW_CFA_RBP, (uint32_t)(o / 8));
    } else if (cfa_n > 1 && cfa_ops[0].atom == DW_OP_breg0 + kRegRsp && cfa_ops[1].atom == DW_OP_breg0 + 16) {
        // The PLT's expression: rsp + 8, plus 8 once the stub has pushed.
        r.type = MEMTOP_ROW_PLT;
        return r;
    } else {
        return r;
    }

    // The return address must be at CFA - 8, as every x86-64 ABI frame has it.
    int64_t ra_off = 0;
    if (!saved_at_cfa_offset(ra_ops, ra_n, ra_off) || ra_off != -8) {
        r.type = MEMTOP_ROW_UNSUPPORTED;
        return r;
    }

    Dwarf_Op bp_mem[3], *bp_ops = nullptr;
    size_t bp_n = 0;
    if (dwarf_frame_register(frame, kRegRbp, bp_mem, &bp_ops, &bp_n) != 0) return r;
    if (bp_n == 0) {
        r.rbp = 0;  // same value, or undefined (then the caller does not need it)
    } else {
        int64_t bo = 0;
        if (!saved_at_cfa_offset(bp_ops, bp_n, bo) || (bo & 7) || bo >= 0 || bo / 8 < -128) {
            r.type = MEMTOP_ROW_UNSUPPORTED;
            return r;
        }
        r.rbp = (int8_t)(bo / 8);
    }
    return r;
}

}  // namespace

const memtop_unwind_row* find_row(const std::vector<memtop_unwind_row>& rows, uint64_t off) {
    auto it = std::upper_bound(rows.begin(), rows.end(), off,
                               [](uint64_t o, const memtop_unwind_row& r) { return o < r.off; });
    if (it == rows.begin()) return nullptr;
    return &*(it - 1);
}

CfiTable build_cfi_table(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw MemtopError(kExitFailure, "unwind table for " + path + ": " + strerror(errno));
    return build_cfi_table_fd(fd.get(), path);
}

CfiTable build_cfi_table_fd(int fd, const std::string& path) {
    elf_version(EV_CURRENT);
    ElfFile f;
    f.elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    GElf_Ehdr eh;
    if (!f.elf || elf_kind(f.elf) != ELF_K_ELF || !gelf_getehdr(f.elf, &eh))
        throw MemtopError(kExitFailure, "unwind table for " + path + ": not an ELF file");

    std::vector<ExecSegment> segs;
    size_t nph = 0;
    elf_getphdrnum(f.elf, &nph);
    for (size_t i = 0; i < nph; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(f.elf, (int)i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
            segs.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset});
    }
    auto to_offset = [&](uint64_t vaddr, uint64_t& off) {
        for (const auto& s : segs)
            if (vaddr >= s.vaddr && vaddr < s.vaddr + s.memsz) {
                off = vaddr - s.vaddr + s.offset;
                return true;
            }
        return false;
    };

    // .eh_frame is what the loader keeps in memory and every distro binary
    // has; .debug_frame is the fallback for files built without it.
    size_t shstrndx = 0;
    elf_getshdrstrndx(f.elf, &shstrndx);
    Elf_Scn* eh_frame = nullptr;
    Elf_Scn* debug_frame = nullptr;
    for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(f.elf, scn));) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS) continue;
        const char* name = elf_strptr(f.elf, shstrndx, sh.sh_name);
        if (!name) continue;
        // An empty .eh_frame (the linker keeps one for a file built without
        // unwind tables and without the start files) describes nothing.
        if (!strcmp(name, ".eh_frame") && sh.sh_size > 0)
            eh_frame = scn;
        else if (!strcmp(name, ".debug_frame"))
            debug_frame = scn;
    }
    bool is_eh = eh_frame != nullptr;
    Elf_Scn* scn = eh_frame ? eh_frame : debug_frame;
    if (!scn) throw MemtopError(kExitFailure, "unwind table for " + path + ": no .eh_frame or .debug_frame");
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf) throw MemtopError(kExitFailure, "unwind table for " + path + ": unreadable CFI section");

    Dwarf_CFI* cfi = nullptr;
    if (is_eh) {
        cfi = f.eh_cfi = dwarf_getcfi_elf(f.elf);
    } else {
        f.dw = dwarf_begin_elf(f.elf, DWARF_C_READ, nullptr);
        cfi = f.dw ? dwarf_getcfi(f.dw) : nullptr;
    }
    if (!cfi) throw MemtopError(kExitFailure, "unwind table for " + path + ": " + dwarf_errmsg(-1));

    std::vector<CodeRange> ranges = fde_ranges(f.elf, scn, is_eh);

    // The ELF entry point is where the kernel starts the process: nothing
    // called it. ld.so's _start/_dl_start_user carry no CFI, so without
    // this a stack of a library constructor would end there "incomplete".
    uint64_t entry_off = 0;
    bool entry_uncovered = eh.e_entry && to_offset(eh.e_entry, entry_off) &&
                           std::none_of(ranges.begin(), ranges.end(),
                                        [&](const CodeRange& r) { return eh.e_entry >= r.lo && eh.e_entry < r.hi; });

    CfiTable t;
    t.fdes = ranges.size();
    auto push = [&](const memtop_unwind_row& r) {
        // Consecutive ranges with one rule are one row.
        if (!t.rows.empty()) {
            auto& last = t.rows.back();
            // Rows must come out sorted: the BPF side binary-searches them.
            // A broken or hostile file can make them go back (FDEs that
            // overlap, segments that map addresses out of order; found by
            // fuzz_cfi_table): such a row is dropped, and the code it would
            // describe keeps the row before it.
            if (r.off < last.off) return;
            if (last.type == r.type && last.cfa == r.cfa && last.rbp == r.rbp) return;
            if (last.off == r.off) {
                last = r;
                return;
            }
        }
        t.rows.push_back(r);
    };
    for (size_t i = 0; i < ranges.size(); i++) {
        const auto& rg = ranges[i];
        uint64_t a = rg.lo;
        while (a < rg.hi) {
            Dwarf_Frame* frame = nullptr;
            if (dwarf_cfi_addrframe(cfi, a, &frame) != 0) break;
            Dwarf_Addr start = 0, end = 0;
            bool signalp = false;
            dwarf_frame_info(frame, &start, &end, &signalp);
            uint64_t off = 0;
            if (end > a && to_offset(a, off) && off <= 0xffffffffULL) {
                auto r = row_for(frame, (uint32_t)off);
                if (r.type == MEMTOP_ROW_UNSUPPORTED) t.unsupported++;
                push(r);
            }
            free(frame);
            if (end <= a) break;
            a = end;
        }
        // A gap until the next function described.
        uint64_t off = 0;
        if ((i + 1 == ranges.size() || ranges[i + 1].lo > rg.hi) && to_offset(rg.hi - 1, off) && off < 0xffffffffULL)
            push(memtop_unwind_row{(uint32_t)(off + 1), 0, MEMTOP_ROW_NONE, 0});
    }
    if (entry_uncovered) {
        // Until the next described function (or the end of the code).
        memtop_unwind_row outer{(uint32_t)entry_off, 0, MEMTOP_ROW_OUTERMOST, 0};
        auto at = std::upper_bound(t.rows.begin(), t.rows.end(), outer.off,
                                   [](uint64_t o, const memtop_unwind_row& r) { return o < r.off; });
        // The row before it (a gap) keeps covering what precedes the entry.
        if (at != t.rows.begin() && (at - 1)->off == outer.off)
            *(at - 1) = outer;
        else
            t.rows.insert(at, outer);
    }
    return t;
}

}  // namespace memtop
