// A traced program whose own ELF file is corrupt: garbage in its symbol
// table, DWARF and .eh_frame, a section count of 65,535, a file cut off in
// the middle of its DWARF. The kernel runs such a file (it reads only the
// program headers), so memtop meets it. memtop must not crash, count the
// heap exactly (the probes are in libc, whole), name what it still can, and
// say in `symbol_files` which file it could not read and what of it.
//
// The copies are made here, by rewriting bytes at the offsets the file's
// own section headers give: no host tool is needed (the kernel matrix's VM
// has none).
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

struct Section {
    std::string name;
    uint64_t offset = 0, size = 0;
};

std::vector<Section> sections_of(const std::vector<char>& elf) {
    Elf64_Ehdr eh;
    REQUIRE(elf.size() >= sizeof eh);
    std::memcpy(&eh, elf.data(), sizeof eh);
    REQUIRE(std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0);
    REQUIRE(eh.e_ident[EI_CLASS] == ELFCLASS64);
    REQUIRE(eh.e_shoff + uint64_t(eh.e_shnum) * sizeof(Elf64_Shdr) <= elf.size());
    std::vector<Elf64_Shdr> sh(eh.e_shnum);
    std::memcpy(sh.data(), elf.data() + eh.e_shoff, sh.size() * sizeof(Elf64_Shdr));
    const Elf64_Shdr& names = sh.at(eh.e_shstrndx);
    std::vector<Section> out;
    for (const auto& s : sh)
        out.push_back({std::string(elf.data() + names.sh_offset + s.sh_name), s.sh_offset,
                       s.sh_type == SHT_NOBITS ? 0 : s.sh_size});
    return out;
}

const Section& section(const std::vector<Section>& all, const std::string& name) {
    for (const auto& s : all)
        if (s.name == name) return s;
    FAIL("no section " << name);
    throw;
}

enum class Damage {
    Dwarf,     // .debug_info, .debug_abbrev, .debug_line, .eh_frame(_hdr): random bytes
    Garbage,   // the same, and .symtab and .strtab too
    Shnum,     // e_shnum = 65,535: the section header table runs past the end
    Truncated  // the file cut in the middle of .debug_line (its section headers are lost)
};

// A copy of test program `prog`, damaged, in a new directory under its own
// name (so its comm stays the program's). Returns its path.
std::string damaged_copy(const std::string& prog, Damage d, const std::string& from = "") {
    std::ifstream in(from.empty() ? prog_path(prog) : from, std::ios::binary);
    REQUIRE(in);
    std::vector<char> elf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::vector<Section> secs = sections_of(elf);
    std::mt19937 rnd(18);
    auto garble = [&](const std::string& name) {
        const Section& s = section(secs, name);
        for (uint64_t i = s.offset; i < s.offset + s.size; ++i) elf[i] = char(rnd());
    };
    switch (d) {
        case Damage::Garbage:
            garble(".symtab");
            garble(".strtab");
            [[fallthrough]];
        case Damage::Dwarf:
            for (const char* n : {".debug_info", ".debug_abbrev", ".debug_line", ".eh_frame", ".eh_frame_hdr"})
                garble(n);
            break;
        case Damage::Shnum: {
            const uint16_t shnum = 0xffff;
            std::memcpy(elf.data() + offsetof(Elf64_Ehdr, e_shnum), &shnum, sizeof shnum);
            break;
        }
        case Damage::Truncated: {
            const Section& s = section(secs, ".debug_line");
            elf.resize(s.offset + s.size / 2);
            break;
        }
    }
    char dir[] = "/tmp/memtop-corrupt-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string path = std::string(dir) + "/" + prog;
    std::ofstream out(path, std::ios::binary);
    out.write(elf.data(), std::streamsize(elf.size()));
    out.close();
    REQUIRE(out);
    REQUIRE(chmod(path.c_str(), 0755) == 0);
    return path;
}

void remove_copy(const std::string& path) {
    unlink(path.c_str());
    rmdir(path.substr(0, path.rfind('/')).c_str());
}

// The report's symbol_files entry of `file`, or null.
const json* symbol_file(const json& rep, const std::string& file) {
    if (!rep.contains("symbol_files") || !rep["symbol_files"].is_array()) return nullptr;
    for (const auto& f : rep["symbol_files"])
        if (f.value("file", std::string()) == file) return &f;
    return nullptr;
}

// memtop -- the damaged c_sites_nofp: exit status, exact heap numbers
// (c_sites_nofp allocates nothing before main: no baseline), every stack's
// frames[0] in the damaged file, and what the report says of that file.
// Returns the final report.
json run_damaged(Damage d, const std::vector<std::string>& problem_parts) {
    const std::string path = damaged_copy("c_sites_nofp", d);
    Run r = run_memtop_cmd({path});
    remove_copy(path);
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);  // memtop passes the exit status through; 0 = the program's self-checks passed
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    check_report_shape(rep);
    ProcStats p = proc_by_comm(rep, "c_sites_nofp");
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == C_PEAK_BYTES);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
    CHECK(p.frees_total == C_FREES_TOTAL);
    Sum all = sum_all(rep, p.pid);
    CHECK(all.bytes == C_TOTAL_BYTES);
    CHECK(all.allocs == C_TOTAL_ALLOCS);
    for (const json* st : stacks_of(rep, p.pid)) {
        INFO("chain: " << chain_of(*st));
        const json& f0 = (*st)["frames"].at(0);
        CHECK(f0["module"] == path);  // the file is known even when nothing in it is named
    }
    INFO("symbol_files: " << (rep.contains("symbol_files") ? rep["symbol_files"].dump() : "absent"));
    const json* note = symbol_file(rep, path);
    REQUIRE(note);
    const std::string problem = note->value("problem", std::string());
    for (const auto& part : problem_parts) CHECK(problem.find(part) != std::string::npos);
    return rep;
}

}  // namespace

TEST_CASE("a program with garbage DWARF and .eh_frame: exact counts, named from its symbols, DWARF said unreadable",
          "[bpf][corrupt][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("c_sites_nofp"));
    json rep = run_damaged(Damage::Dwarf, {"DWARF unreadable"});
    // The symbol table is whole: every site is still named, and counted
    // exactly; no line is known.
    ProcStats p = proc_by_comm(rep, "c_sites_nofp");
    for (const expect::Site& site : expect::c_sites) {
        INFO("site " << site.function);
        Sum s = sum_frame0(rep, p.pid, site.function);
        CHECK(s.bytes == site.bytes);
        CHECK(s.allocs == site.allocs);
        for (const json* st : stacks_frame0(rep, p.pid, site.function)) CHECK((*st)["frames"][0]["line"].is_null());
    }
}

TEST_CASE("a program with a garbage symbol table too: exact counts, the table said garbled", "[bpf][corrupt][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("c_sites_nofp"));
    json rep = run_damaged(Damage::Garbage, {"DWARF unreadable", "symbol table garbled"});
    // Nothing in the file is named from its garbage (its sites are static
    // functions, in no other table).
    ProcStats p = proc_by_comm(rep, "c_sites_nofp");
    for (const expect::Site& site : expect::c_sites) CHECK(sum_frame0(rep, p.pid, site.function).stacks == 0);
}

TEST_CASE("a program whose section count is 65,535: exact counts, its section headers said unreadable",
          "[bpf][corrupt][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("c_sites_nofp"));
    run_damaged(Damage::Shnum, {"section headers (65535 at offset", "past the end of the file"});
}

TEST_CASE("a program cut off in its DWARF: exact counts, the file said truncated", "[bpf][corrupt][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("c_sites_nofp"));
    run_damaged(Damage::Truncated, {"past the end of the file"});
}

// A library (not the program) whose ELF is garbage where the dynamic
// loader does not look: deep_sites run with LD_LIBRARY_PATH at a damaged
// copy of its libdeep_lib.so (its RUNPATH gives way to LD_LIBRARY_PATH).
TEST_CASE("a library with garbage symbols, DWARF and .eh_frame: exact counts, the library said unreadable",
          "[bpf][corrupt][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    const std::string prog = prog_path("deep_sites");
    const std::string lib =
        damaged_copy("libdeep_lib.so", Damage::Garbage, prog.substr(0, prog.rfind('/')) + "/libdeep_lib.so");
    const std::string dir = lib.substr(0, lib.rfind('/'));
    ::setenv("LD_LIBRARY_PATH", dir.c_str(), 1);
    Run r = run_memtop_cmd({prog});
    ::unsetenv("LD_LIBRARY_PATH");
    remove_copy(lib);
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    check_report_shape(rep);
    ProcStats p = proc_by_comm(rep, "deep_sites");
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    // Every site once, exactly; the library's allocation counted whole even
    // where its unwinding stops in the garbled library.
    for (uint64_t size :
         {uint64_t(DEEP_CHAIN_SIZE), uint64_t(DEEP_NEW_SIZE), uint64_t(DEEP_LIB_SIZE), uint64_t(DEEP_THREAD_SIZE)}) {
        INFO("size " << size);
        const json* st = stack_with_bytes(rep, p.pid, size);
        REQUIRE(st);
        CHECK((*st)["allocs"] == 1);
    }
    const json* st = stack_with_bytes(rep, p.pid, DEEP_LIB_SIZE);
    const json& f0 = (*st)["frames"].at(0);
    CHECK(f0["module"] == lib);  // the library is known, mapped from the damaged copy
    // deep_lib_inner is static: only the garbled .symtab named it.
    CHECK(f0["function"] != "deep_lib_inner");
    INFO("symbol_files: " << (rep.contains("symbol_files") ? rep["symbol_files"].dump() : "absent"));
    const json* note = symbol_file(rep, lib);
    REQUIRE(note);
    const std::string problem = note->value("problem", std::string());
    // (libdwfl drops the garbled .symtab of a library with a .dynsym
    // without an error: only the DWARF is said unreadable.)
    CHECK(problem.find("DWARF unreadable") != std::string::npos);
}
