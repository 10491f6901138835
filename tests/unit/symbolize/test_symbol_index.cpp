// SymbolIndex against libdwfl's own dwfl_module_addrinfo on the libraries
// this test is linked with (libc, libstdc++, libm, libgcc_s): wherever the
// index answers, it must name the symbol libdwfl names, at the same offset.
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <link.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "symbolize/symbol_index.h"

using memtop::SymbolIndex;

namespace {

std::vector<std::string> loaded_libraries() {
    std::vector<std::string> out;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            auto* v = static_cast<std::vector<std::string>*>(data);
            std::string name = info->dlpi_name ? info->dlpi_name : "";
            for (const char* want : {"libc.so", "libstdc++.so", "libm.so", "libgcc_s.so"})
                if (name.find(want) != std::string::npos) v->push_back(name);
            return 0;
        },
        &out);
    return out;
}

const Dwfl_Callbacks kCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,
};

struct Compared {
    size_t probed = 0;   // addresses libdwfl names
    size_t decided = 0;  // of those, answered by the index
    size_t mismatched = 0;
    std::string first_mismatch;
};

Compared compare(const std::string& path) {
    Compared c;
    Dwfl* dwfl = dwfl_begin(&kCallbacks);
    REQUIRE(dwfl);
    dwfl_report_begin(dwfl);
    Dwfl_Module* mod = dwfl_report_offline(dwfl, path.c_str(), path.c_str(), -1);
    dwfl_report_end(dwfl, nullptr, nullptr);
    REQUIRE(mod);
    REQUIRE(dwfl_module_getsymtab(mod) > 0);
    SymbolIndex index(mod);
    REQUIRE(index.size() > 0);

    // Probe the start, the middle, the last byte and one past the end of
    // every function: covers nesting, aliases, gaps and neighbours.
    std::set<uint64_t> probes;
    for (int i = 1; i < dwfl_module_getsymtab(mod); ++i) {
        GElf_Sym sym;
        GElf_Addr value = 0;
        if (!dwfl_module_getsym_info(mod, i, &sym, &value, nullptr, nullptr, nullptr)) continue;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size == 0 || sym.st_shndx == SHN_UNDEF) continue;
        probes.insert({value, value + sym.st_size / 2, value + sym.st_size, value + sym.st_size - 1});
    }
    for (uint64_t addr : probes) {
        GElf_Off off = 0;
        GElf_Sym sym;
        const char* want = dwfl_module_addrinfo(mod, addr, &off, &sym, nullptr, nullptr, nullptr);
        auto got = index.find(addr);
        if (!want) {
            if (got) {  // the index must not name what libdwfl does not
                ++c.mismatched;
                if (c.first_mismatch.empty()) c.first_mismatch = std::to_string(addr) + ": libdwfl names nothing";
            }
            continue;
        }
        ++c.probed;
        if (!got) continue;
        ++c.decided;
        if (std::strcmp(got->name, want) != 0 || got->offset != off) {
            ++c.mismatched;
            if (c.first_mismatch.empty())
                c.first_mismatch = std::to_string(addr) + ": index " + got->name + "+" + std::to_string(got->offset) +
                                   ", libdwfl " + want + "+" + std::to_string(off);
        }
    }
    dwfl_end(dwfl);
    return c;
}

}  // namespace

TEST_CASE("the symbol index names what libdwfl names, on the system's libraries", "[symbolize]") {
    const auto libraries = loaded_libraries();
    REQUIRE(libraries.size() >= 3);
    for (const auto& path : libraries) {
        Compared c = compare(path);
        INFO(path << ": " << c.probed << " probed, " << c.decided << " decided; " << c.first_mismatch);
        CHECK(c.mismatched == 0);
        // The index is there to spare libdwfl's scan: it must decide almost
        // everything itself.
        CHECK(c.probed > 100);
        CHECK(double(c.decided) >= 0.95 * double(c.probed));
    }
}
