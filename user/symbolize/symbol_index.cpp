#include "symbolize/symbol_index.h"

#include <gelf.h>

#include <algorithm>
#include <cstring>

namespace memtop {

namespace {

// A covering entry is looked for this many entries below the search point
// at most (nested symbols are rare); past it libdwfl decides.
constexpr size_t kMaxWalk = 64;

}  // namespace

SymbolIndex::SymbolIndex(Dwfl_Module* mod) : mod_(mod) {
    const int count = dwfl_module_getsymtab(mod);
    const int first_global = dwfl_module_getsymtab_first_global(mod);
    if (count <= 0 || first_global < 0) return;
    for (int i = 1; i < count; ++i) {  // 0: the null symbol
        GElf_Sym sym;
        GElf_Addr value = 0;
        GElf_Word shndx = 0;
        Elf* elf = nullptr;
        Dwarf_Addr bias = 0;
        const char* name = dwfl_module_getsym_info(mod, i, &sym, &value, &shndx, &elf, &bias);
        if (!name || name[0] == '\0' || sym.st_shndx == SHN_UNDEF) continue;
        const int type = GELF_ST_TYPE(sym.st_info);
        if (type == STT_SECTION || type == STT_FILE || type == STT_TLS) continue;
        const bool global = i >= first_global;
        if (sym.st_size == 0) {
            if (global) sizeless_global_starts_.push_back(value);
            continue;
        }
        (global ? globals_ : locals_).entries.push_back(Entry{value, value + sym.st_size, name, Tie::None});
    }
    globals_.seal();
    locals_.seal();
    std::sort(sizeless_global_starts_.begin(), sizeless_global_starts_.end());
}

void SymbolIndex::Table::seal() {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.start < b.start || (a.start == b.start && a.end < b.end);
    });
    max_end.resize(entries.size());
    uint64_t reach = 0;
    for (size_t i = 0; i < entries.size();) {
        size_t j = i + 1;
        while (j < entries.size() && entries[j].start == entries[i].start) ++j;
        if (j - i > 1) {
            // sorted by end within the group: equal first and last ends mean
            // all of one size
            const Tie tie = entries[i].end == entries[j - 1].end ? Tie::Aliases : Tie::Undecided;
            for (size_t k = i; k < j; ++k) entries[k].tie = tie;
        }
        for (; i < j; ++i) {
            reach = std::max(reach, entries[i].end);
            max_end[i] = reach;
        }
    }
}

size_t SymbolIndex::Table::closest(uint64_t addr, bool& ambiguous) const {
    auto after =
        std::upper_bound(entries.begin(), entries.end(), addr, [](uint64_t a, const Entry& e) { return a < e.start; });
    size_t j = static_cast<size_t>(after - entries.begin());
    for (size_t walked = 0; j > 0; ++walked) {
        --j;
        if (max_end[j] <= addr) return kNone;  // nothing at or below j covers addr
        if (walked == kMaxWalk) {
            ambiguous = true;
            return kNone;
        }
        const Entry& e = entries[j];
        if (addr < e.end) {
            if (e.tie == Tie::None) return j;
            if (e.tie == Tie::Undecided) {
                ambiguous = true;
                return kNone;
            }
            while (j > 0 && entries[j - 1].start == e.start) --j;  // the group's first entry
            return j;
        }
    }
    return kNone;
}

const SymbolIndex::Entry* SymbolIndex::Table::settle(size_t first, Dwfl_Module* mod) {
    const uint64_t start = entries[first].start;
    size_t last = first;
    while (last + 1 < entries.size() && entries[last + 1].start == start) ++last;
    for (size_t k = first; k <= last; ++k)
        if (entries[k].tie == Tie::Settled) return &entries[k];
    if (entries[first].tie == Tie::Undecided) return nullptr;
    // At its own start every alias covers the address and nothing of the
    // table starts closer, so libdwfl's choice there is its choice anywhere
    // in the group's range; a name from another table (a global covering a
    // local group) leaves the group to libdwfl.
    GElf_Off off = 0;
    GElf_Sym sym;
    const char* name = dwfl_module_addrinfo(mod, start, &off, &sym, nullptr, nullptr, nullptr);
    const Entry* chosen = nullptr;
    for (size_t k = first; k <= last && name && off == 0; ++k)
        if (entries[k].name == name || std::strcmp(entries[k].name, name) == 0) {
            chosen = &entries[k];
            break;
        }
    for (size_t k = first; k <= last; ++k)
        entries[k].tie = !chosen ? Tie::Undecided : &entries[k] == chosen ? Tie::Settled : Tie::Passed;
    return chosen;
}

std::optional<SymbolIndex::Hit> SymbolIndex::find(uint64_t addr) {
    bool ambiguous = false;
    Table* table = &globals_;
    size_t i = globals_.closest(addr, ambiguous);
    if (ambiguous) return std::nullopt;
    if (i == kNone) {
        // libdwfl skips the locals when a sizeless global starts exactly here.
        if (std::binary_search(sizeless_global_starts_.begin(), sizeless_global_starts_.end(), addr))
            return std::nullopt;
        table = &locals_;
        i = locals_.closest(addr, ambiguous);
        if (ambiguous || i == kNone) return std::nullopt;
    }
    const Entry* e = &table->entries[i];
    if (e->tie != Tie::None) e = table->settle(i, mod_);
    if (!e) return std::nullopt;
    return Hit{e->name, addr - e->start};
}

}  // namespace memtop
