// user/unwind: the loader's --list output, and the unwind tables derived from
// call-frame information, checked address by address against libdw itself.
#include <catch2/catch.hpp>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attach/elf_image.h"
#include "attach/program_files.h"
#include "kernel/unwind/cfi_table.h"
#include "util/errors.h"

using namespace memtop;

// ------------------------------------------------------------ parse_loader_list

TEST_CASE("parse_loader_list: the paths of ld.so --list, nothing else", "[unwind][loader]") {
    // As glibc 2.36's ld.so --list prints it, plus what it prints for a
    // library it cannot find and a path with a space.
    const char* text =
        "\tlinux-vdso.so.1 (0x00007ffd5a1f2000)\n"
        "\tlibdeep_lib.so => /work/build/tests/progs/libdeep_lib.so (0x00007f0c1a4b0000)\n"
        "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f0c1a200000)\n"
        "\tlibgone.so.1 => not found\n"
        "\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f0c1a121000)\n"
        "\tlibspace.so => /opt/my dir/libspace.so (0x00007f0c1a110000)\n"
        "\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0c1a101000)\n"
        "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c19f20000)\n"
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1a4c4000)\n";
    std::vector<std::string> want{
        "/work/build/tests/progs/libdeep_lib.so",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/opt/my dir/libspace.so",
        "/lib/x86_64-linux-gnu/libgcc_s.so.1",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    };
    CHECK(parse_loader_list(text) == want);
    CHECK(parse_loader_list("\tstatically linked\n").empty());
    CHECK(parse_loader_list("").empty());
}

TEST_CASE("program_files asks this program's own loader", "[unwind][loader]") {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = 0;
    auto files = program_files(self, ElfImage::open(self)->interpreter());
    REQUIRE(files.size() >= 3);
    CHECK(files[0] == self);
    auto has = [&](const std::string& base) {
        return std::any_of(files.begin(), files.end(), [&](const std::string& f) {
            return f.size() >= base.size() && f.compare(f.size() - base.size(), base.size(), base) == 0;
        });
    };
    CHECK(has("/libc.so.6"));
    CHECK(has("/libdw.so.1"));
    CHECK(has("/ld-linux-x86-64.so.2"));
    CHECK(std::count(files.begin(), files.end(), std::string(self)) == 1);
    for (const auto& f : files) CHECK(access(f.c_str(), R_OK) == 0);
}

// A followed process's loader is that process's choice (its PT_INTERP):
// memtop runs it with the process's user and group, never more. Here the
// "loader" is a script that writes who runs it. Needs root, to change ids.
TEST_CASE("program_files runs the loader as the user it is given, with no way back", "[unwind][loader]") {
    if (geteuid() != 0) {
        WARN("not root: the loader cannot be run as another user");
        return;
    }
    char dir[] = "/tmp/memtop-loader.XXXXXX";
    REQUIRE(mkdtemp(dir));
    REQUIRE(chmod(dir, 01777) == 0);
    const std::string loader = std::string(dir) + "/ld.sh", out = std::string(dir) + "/who";
    {
        FILE* f = fopen(loader.c_str(), "w");
        REQUIRE(f);
        fprintf(f, "#!/bin/sh\necho \"$(id -u) $(id -g) $(id -G)\" > %s\necho '\tlibx.so => /lib/libx.so (0x1)'\n",
                out.c_str());
        fclose(f);
    }
    REQUIRE(chmod(loader.c_str(), 0755) == 0);
    RunAs nobody{65534, 65534};
    auto files = program_files("/bin/true", loader, nullptr, &nobody);
    CHECK(files == std::vector<std::string>{"/bin/true", "/lib/libx.so"});
    std::string who;
    if (FILE* f = fopen(out.c_str(), "r")) {
        char buf[256] = {};
        if (fgets(buf, sizeof buf, f)) who = buf;
        fclose(f);
    }
    // uid, gid, and no supplementary group of root's left.
    CHECK(who == "65534 65534 65534\n");
    // Without `as`: memtop's own ids (a -- CMD memtop starts itself).
    unlink(out.c_str());
    program_files("/bin/true", loader, nullptr, nullptr);
    std::string root;
    if (FILE* f = fopen(out.c_str(), "r")) {
        char buf[256] = {};
        if (fgets(buf, sizeof buf, f)) root = buf;
        fclose(f);
    }
    CHECK(root.rfind("0 0", 0) == 0);
    unlink(out.c_str());
    unlink(loader.c_str());
    rmdir(dir);
}

// ------------------------------------------------------------ build_cfi_table

namespace {

constexpr int kRbp = 6, kRsp = 7, kRa = 16;

// An ELF file and its CFI as libdw reads them: the ground truth.
struct ElfCfi {
    int fd = -1;
    Elf* elf = nullptr;
    Dwarf* dw = nullptr;
    Dwarf_CFI* cfi = nullptr;
    struct Seg {
        uint64_t vaddr, memsz, offset;
    };
    std::vector<Seg> exec;  // executable PT_LOADs
    GElf_Ehdr ehdr{};

    explicit ElfCfi(const std::string& path) {
        elf_version(EV_CURRENT);
        fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
        REQUIRE(elf);
        REQUIRE(gelf_getehdr(elf, &ehdr));
        size_t nph = 0;
        REQUIRE(elf_getphdrnum(elf, &nph) == 0);
        for (size_t i = 0; i < nph; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(elf, int(i), &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
                exec.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset});
        }
        cfi = section("eh_frame") ? dwarf_getcfi_elf(elf) : nullptr;
        if (!cfi) {
            dw = dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
            if (dw) cfi = dwarf_getcfi(dw);
        }
        REQUIRE(cfi);
    }
    ~ElfCfi() {
        if (cfi && !dw) dwarf_cfi_end(cfi);  // .eh_frame's is ours; .debug_frame's is dw's
        if (dw) dwarf_end(dw);
        if (elf) elf_end(elf);
        if (fd >= 0) close(fd);
    }
    // Whether the file has a non-empty section of this name.
    bool section(const char* name_without_dot) {
        size_t shstrndx = 0;
        elf_getshdrstrndx(elf, &shstrndx);
        for (Elf_Scn* s = nullptr; (s = elf_nextscn(elf, s));) {
            GElf_Shdr sh;
            const char* n = gelf_getshdr(s, &sh) ? elf_strptr(elf, shstrndx, sh.sh_name) : nullptr;
            if (n && n[0] == '.' && !strcmp(n + 1, name_without_dot) && sh.sh_size > 0) return true;
        }
        return false;
    }
    bool offset_of(uint64_t vaddr, uint64_t& off) const {
        for (const auto& s : exec)
            if (vaddr >= s.vaddr && vaddr < s.vaddr + s.memsz) {
                off = vaddr - s.vaddr + s.offset;
                return true;
            }
        return false;
    }
    bool vaddr_of(uint64_t off, uint64_t& vaddr) const {
        for (const auto& s : exec)
            if (off >= s.offset && off < s.offset + s.memsz) {
                vaddr = off - s.offset + s.vaddr;
                return true;
            }
        return false;
    }
    // Function symbols (value, size) in executable segments, by address, once each.
    std::vector<std::pair<uint64_t, uint64_t>> functions() {
        std::set<std::pair<uint64_t, uint64_t>> out;
        for (Elf_Scn* s = nullptr; (s = elf_nextscn(elf, s));) {
            GElf_Shdr sh;
            if (!gelf_getshdr(s, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)) continue;
            Elf_Data* d = elf_getdata(s, nullptr);
            size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
            for (size_t i = 0; d && i < n; i++) {
                GElf_Sym sym;
                uint64_t off;
                if (gelf_getsym(d, int(i), &sym) && GELF_ST_TYPE(sym.st_info) == STT_FUNC && sym.st_size &&
                    sym.st_shndx != SHN_UNDEF && offset_of(sym.st_value, off))
                    out.insert({sym.st_value, sym.st_size});
            }
        }
        return {out.begin(), out.end()};
    }
};

// "saved at CFA + off" for a register rule as libdw hands it back.
bool at_cfa_plus(const Dwarf_Op* ops, size_t n, int64_t& off) {
    if (n == 1 && ops[0].atom == DW_OP_call_frame_cfa) return off = 0, true;
    if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst)
        return off = int64_t(ops[1].number), true;
    if (n == 3 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_consts && ops[2].atom == DW_OP_plus)
        return off = int64_t(ops[1].number), true;
    return false;
}

// What libdw says at one address, in the terms of a row. (libdw's own row
// start, dwarf_frame_info's `start`, is not used: after DW_CFA_restore_state
// it is the remembered row's start, not where the restored rule begins.)
struct Truth {
    bool covered = false;    // an FDE covers the address
    bool outermost = false;  // return address undefined
    bool simple = false;     // CFA = rsp|rbp + off, RA at CFA-8, rbp same or at CFA+off
    int cfa_reg = -1;
    int64_t cfa_off = 0, rbp_off = 0;
};

Truth truth_at(Dwarf_CFI* cfi, uint64_t vaddr) {
    Truth t;
    Dwarf_Frame* frame = nullptr;
    if (dwarf_cfi_addrframe(cfi, vaddr, &frame) != 0) return t;
    t.covered = true;

    Dwarf_Op ra_mem[3], *ra = nullptr;
    size_t ra_n = 0;
    int ra_rc = dwarf_frame_register(frame, kRa, ra_mem, &ra, &ra_n);
    if (ra_rc == 0 && ra_n == 0 && ra == ra_mem) {
        t.outermost = true;
    } else {
        Dwarf_Op* cfa = nullptr;
        size_t cfa_n = 0;
        int64_t ra_off = 0;
        if (dwarf_frame_cfa(frame, &cfa, &cfa_n) == 0 && cfa_n == 1 && ra_rc == 0 && at_cfa_plus(ra, ra_n, ra_off) &&
            ra_off == -8) {
            if (cfa[0].atom == DW_OP_bregx) {
                t.cfa_reg = int(cfa[0].number);
                t.cfa_off = int64_t(cfa[0].number2);
            } else if (cfa[0].atom >= DW_OP_breg0 && cfa[0].atom <= DW_OP_breg31) {
                t.cfa_reg = cfa[0].atom - DW_OP_breg0;
                t.cfa_off = int64_t(cfa[0].number);
            }
            Dwarf_Op bp_mem[3], *bp = nullptr;
            size_t bp_n = 0;
            bool bp_ok = dwarf_frame_register(frame, kRbp, bp_mem, &bp, &bp_n) == 0 &&
                         (bp_n == 0 || at_cfa_plus(bp, bp_n, t.rbp_off));
            t.simple = bp_ok && (t.cfa_reg == kRsp || t.cfa_reg == kRbp) && t.cfa_off >= 0 && t.cfa_off % 8 == 0 &&
                       t.rbp_off % 8 == 0 && t.rbp_off <= 0;
        }
    }
    free(frame);
    return t;
}

// The row libdw's rule calls for: (type, cfa, rbp). Rules a row cannot hold
// are "other" (the table says PLT or unsupported there).
constexpr int kOther = -1;
struct Want {
    int type;
    int cfa = 0, rbp = 0;
    bool operator==(const Want&) const = default;
};
Want want_of(const Truth& t) {
    if (!t.covered) return {MEMTOP_ROW_NONE};
    if (t.outermost) return {MEMTOP_ROW_OUTERMOST};
    if (!t.simple) return {kOther};
    return {t.cfa_reg == kRsp ? MEMTOP_ROW_CFA_RSP : MEMTOP_ROW_CFA_RBP, int(t.cfa_off / 8), int(t.rbp_off / 8)};
}

const char* type_name(int type) {
    switch (type) {
        case MEMTOP_ROW_NONE:
            return "none";
        case MEMTOP_ROW_CFA_RSP:
            return "cfa=rsp";
        case MEMTOP_ROW_CFA_RBP:
            return "cfa=rbp";
        case MEMTOP_ROW_PLT:
            return "plt";
        case MEMTOP_ROW_OUTERMOST:
            return "outermost";
        case kOther:
            return "other";
        default:
            return "unsupported";
    }
}

std::string show(const Want& w) {
    return std::string(type_name(w.type)) + " cfa+" + std::to_string(w.cfa * 8) + " rbp@cfa" +
           std::to_string(w.rbp * 8);
}

struct Comparison {
    size_t addresses = 0;   // compared
    size_t simple = 0;      // of which libdw's rule is one a row holds exactly
    size_t boundaries = 0;  // of which the rule differs from the byte before's
    size_t mismatches = 0;
    std::string first;  // the first few mismatches, for the message
};

// Every `stride`-th byte of each function (function symbols, by address):
// the row for that address says what libdw says there, and where libdw's
// rule differs from the byte before's (an FDE's start, a push, a pop) a row
// starts exactly there.
Comparison compare_with_libdw(ElfCfi& e, const CfiTable& t, size_t stride) {
    Comparison c;
    auto fail = [&](uint64_t vaddr, const std::string& why) {
        if (c.mismatches++ < 8) {
            std::ostringstream o;
            o << std::hex << "0x" << vaddr << std::dec << ": " << why << "\n";
            c.first += o.str();
        }
    };
    for (const auto& [lo, size] : e.functions()) {
        for (uint64_t a = lo; a < lo + size; a += stride) {
            uint64_t off = 0;
            if (!e.offset_of(a, off) || a == e.ehdr.e_entry) continue;  // the entry: its own test
            const Want want = want_of(truth_at(e.cfi, a));
            const memtop_unwind_row* r = find_row(t.rows, off);
            c.addresses++;
            if (!r) {
                if (want.type != MEMTOP_ROW_NONE) fail(a, "no row; libdw: " + show(want));
                continue;
            }
            Want got{memtop_row_type(r), int(memtop_row_cfa(r)), r->rbp};
            if (want.type == kOther) {
                // Expressions (the PLT's) or registers the BPF side does not
                // follow: the row must not claim a plain rule.
                if (r->type != MEMTOP_ROW_PLT && r->type != MEMTOP_ROW_UNSUPPORTED)
                    fail(a, "libdw: other; row: " + show(got));
            } else {
                if (want.type == MEMTOP_ROW_CFA_RSP || want.type == MEMTOP_ROW_CFA_RBP) c.simple++;
                if (want.type == MEMTOP_ROW_NONE || want.type == MEMTOP_ROW_OUTERMOST) got.cfa = got.rbp = 0;
                if (!(got == want)) fail(a, "libdw: " + show(want) + "; row: " + show(got));
            }
            uint64_t prev_off = 0;
            if (!e.offset_of(a - 1, prev_off) || a - 1 == e.ehdr.e_entry) continue;
            const Want before = want_of(truth_at(e.cfi, a - 1));
            if (before == want || want.type == kOther || before.type == kOther) continue;
            c.boundaries++;
            if (r->off != off) {
                std::ostringstream o;
                o << "libdw's rule changes here (" << show(before) << " -> " << show(want) << "); the row starts at 0x"
                  << std::hex << r->off << " (file offset)";
                fail(a, o.str());
            }
        }
    }
    return c;
}

// Rows are sorted, and none repeats the rule before it: each starts where
// libdw's rule changes, or where code without CFI begins.
void check_rows(ElfCfi& e, const CfiTable& t) {
    REQUIRE(!t.rows.empty());
    size_t unsorted = 0, redundant = 0;
    std::string first;
    for (size_t i = 1; i < t.rows.size(); i++) {
        const auto& r = t.rows[i];
        if (t.rows[i - 1].off >= r.off) unsorted++;
        uint64_t vaddr = 0;
        if (!e.vaddr_of(r.off, vaddr) || vaddr == e.ehdr.e_entry || r.type == MEMTOP_ROW_UNSUPPORTED ||
            r.type == MEMTOP_ROW_PLT)
            continue;
        const Want here = want_of(truth_at(e.cfi, vaddr)), before = want_of(truth_at(e.cfi, vaddr - 1));
        if (here == before && redundant++ < 8) {
            std::ostringstream o;
            o << std::hex << "row at 0x" << vaddr << " (" << type_name(r.type) << "): libdw's rule is the same at 0x"
              << vaddr - 1 << ": " << show(here) << "\n";
            first += o.str();
        }
    }
    INFO(first);
    CHECK(unsorted == 0);
    CHECK(redundant == 0);
}

uint64_t entry_offset(const ElfCfi& e) {
    uint64_t off = 0;
    REQUIRE(e.offset_of(e.ehdr.e_entry, off));
    return off;
}

}  // namespace

TEST_CASE("build_cfi_table on the system libc says what libdw says at every 7th byte", "[unwind][cfi]") {
    const std::string libc = "/lib/x86_64-linux-gnu/libc.so.6";
    CfiTable t = build_cfi_table(libc);
    ElfCfi e(libc);
    CHECK(t.fdes > 1000);
    check_rows(e, t);
    Comparison c = compare_with_libdw(e, t, 7);
    INFO(c.first);
    CHECK(c.mismatches == 0);
    // Not vacuous: most of libc's code is covered by plain rules, and the
    // rule changes thousands of times.
    CHECK(c.addresses > 20000);
    CHECK(c.simple > c.addresses * 9 / 10);
    CHECK(c.boundaries > 1000);
}

TEST_CASE("build_cfi_table on the fixture, from .eh_frame and from .debug_frame", "[unwind][cfi]") {
    for (const char* path : {UNWIND_FIXTURE_EH, UNWIND_FIXTURE_DEBUG}) {
        INFO(path);
        CfiTable t = build_cfi_table(path);
        ElfCfi e(path);
        CHECK(e.section("eh_frame") == (path == std::string(UNWIND_FIXTURE_EH)));
        CHECK(e.section("debug_frame") == (path == std::string(UNWIND_FIXTURE_DEBUG)));
        check_rows(e, t);
        Comparison c = compare_with_libdw(e, t, 1);  // every byte
        INFO(c.first);
        CHECK(c.mismatches == 0);
        CHECK(c.addresses > 300);
        CHECK(c.boundaries > 20);

        // The shapes fixture.c is made for: a leaf is CFA = rsp + 8 at every
        // byte; the function with a VLA has rows with CFA = rbp + 16 and rbp
        // saved at CFA - 16.
        auto funcs = e.functions();
        auto fn = [&](const char* name) {
            for (Elf_Scn* s = nullptr; (s = elf_nextscn(e.elf, s));) {
                GElf_Shdr sh;
                if (!gelf_getshdr(s, &sh) || sh.sh_type != SHT_SYMTAB) continue;
                Elf_Data* d = elf_getdata(s, nullptr);
                for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
                    GElf_Sym sym;
                    if (gelf_getsym(d, int(i), &sym) && !strcmp(elf_strptr(e.elf, sh.sh_link, sym.st_name), name))
                        return std::make_pair(uint64_t(sym.st_value), uint64_t(sym.st_size));
                }
            }
            FAIL("no symbol " << name);
            return std::make_pair(uint64_t(0), uint64_t(0));
        };
        auto [leaf, leaf_size] = fn("fixture_leaf");
        for (uint64_t a = leaf; a < leaf + leaf_size; a++) {
            uint64_t off = 0;
            REQUIRE(e.offset_of(a, off));
            const memtop_unwind_row* r = find_row(t.rows, off);
            REQUIRE(r);
            CHECK(r->type == MEMTOP_ROW_CFA_RSP);
            CHECK(r->cfa == 1);
            CHECK(r->rbp == 0);
        }
        auto [vla, vla_size] = fn("fixture_vla");
        bool rbp_frame = false;
        for (uint64_t a = vla; a < vla + vla_size; a++) {
            uint64_t off = 0;
            REQUIRE(e.offset_of(a, off));
            const memtop_unwind_row* r = find_row(t.rows, off);
            REQUIRE(r);
            rbp_frame = rbp_frame || (r->type == MEMTOP_ROW_CFA_RBP && r->cfa == 2 && r->rbp == -2);
        }
        CHECK(rbp_frame);
        // The big frame's body: the CFA is about 4 MiB above rsp.
        auto [big, big_size] = fn("fixture_big_frame");
        uint32_t biggest = 0;
        for (uint64_t a = big; a < big + big_size; a++) {
            uint64_t off = 0;
            REQUIRE(e.offset_of(a, off));
            const memtop_unwind_row* r = find_row(t.rows, off);
            REQUIRE(r);
            if (memtop_row_type(r) == MEMTOP_ROW_CFA_RSP) biggest = std::max(biggest, memtop_row_cfa(r));
        }
        CHECK(biggest > 0xffffu);                           // past what 16 bits hold
        CHECK(uint64_t(biggest) * 8 >= (4u << 20) - 4096);  // about the array
    }
}

TEST_CASE("ld.so's entry point, which has no CFI, is an outermost row", "[unwind][cfi]") {
    const std::string ldso = "/lib64/ld-linux-x86-64.so.2";
    CfiTable t = build_cfi_table(ldso);
    ElfCfi e(ldso);
    REQUIRE(e.ehdr.e_entry != 0);
    CHECK_FALSE(truth_at(e.cfi, e.ehdr.e_entry).covered);  // why the row is needed
    const memtop_unwind_row* r = find_row(t.rows, entry_offset(e));
    REQUIRE(r);
    CHECK(r->off == entry_offset(e));
    CHECK(r->type == MEMTOP_ROW_OUTERMOST);
    check_rows(e, t);
}

TEST_CASE("a file without call-frame information, or not ELF, is refused by name", "[unwind][cfi]") {
    auto message_of = [](const std::string& path) {
        try {
            build_cfi_table(path);
        } catch (const MemtopError& e) {
            return std::string(e.what());
        }
        return std::string("<no error>");
    };
    std::string nocfi = UNWIND_FIXTURE_NOCFI;
    {
        // The fixture really has no CFI: no .debug_frame, and at most the
        // empty .eh_frame the linker leaves.
        int fd = open(nocfi.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        elf_version(EV_CURRENT);
        Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
        REQUIRE(elf);
        size_t shstrndx = 0;
        elf_getshdrstrndx(elf, &shstrndx);
        for (Elf_Scn* s = nullptr; (s = elf_nextscn(elf, s));) {
            GElf_Shdr sh;
            REQUIRE(gelf_getshdr(s, &sh));
            std::string name = elf_strptr(elf, shstrndx, sh.sh_name);
            INFO(name);
            CHECK(name != ".debug_frame");
            if (name == ".eh_frame") CHECK(sh.sh_size == 0);
        }
        elf_end(elf);
        close(fd);
    }
    CHECK(message_of(nocfi) == "unwind table for " + nocfi + ": no .eh_frame or .debug_frame");
    char text[] = "/tmp/memtop-unwind-test-XXXXXX";  // readable, not ELF
    int fd = mkstemp(text);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "#!/bin/sh\nexit 0\n", 17) == 17);
    close(fd);
    CHECK(message_of(text) == std::string("unwind table for ") + text + ": not an ELF file");
    unlink(text);
    const std::string missing = "/nonexistent/memtop-no-such-file";
    CHECK(message_of(missing) == "unwind table for " + missing + ": No such file or directory");
}

TEST_CASE("building a table frees what libdw allocated for it", "[unwind][cfi]") {
    // Found by fuzz_cfi_table (LeakSanitizer): the .eh_frame CFI that
    // dwarf_getcfi_elf returns was never ended, about 1 KiB per file, and
    // memtop builds a table for every file its targets map. Under the ASan
    // build LeakSanitizer checks this; here the heap's own count does.
    const std::string lib = UNWIND_FIXTURE_EH;
    build_cfi_table(lib);  // libelf's one-time state
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < 200; i++) build_cfi_table(lib);
    size_t after = mallinfo2().uordblks;
    // The leak was ~1.9 KiB a build (~370 KiB here); what malloc's thread
    // cache holds, counted as in use, stays under ~16 KiB.
    CHECK(after <= before + 64 * 1024);
}

TEST_CASE("build_cfi_table keeps its rows sorted on a file whose FDEs go back (a fuzzer's find)", "[unwind][cfi]") {
    // tests/fuzz/regressions/cfi_table-rows-out-of-order: a mutated small
    // library on which rows came out unsorted, which the BPF side's binary
    // search cannot use.
    const std::string path = std::string(FUZZ_REGRESSIONS_DIR) + "/cfi_table-rows-out-of-order";
    REQUIRE(access(path.c_str(), R_OK) == 0);
    try {
        CfiTable t = build_cfi_table(path);
        for (size_t i = 1; i < t.rows.size(); i++) {
            INFO("row " << i);
            CHECK(t.rows[i - 1].off < t.rows[i].off);
        }
    } catch (const MemtopError&) {
        // Refused by name is fine too; unsorted rows are not.
    }
}
