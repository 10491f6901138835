// Address -> symbol for one ELF module, by binary search over a table sorted
// once, instead of libdwfl's dwfl_module_addrinfo, which scans every symbol
// of the module for every address (libc: ~3,000 symbols; libstdc++: ~10,000).
//
// The index answers only where libdwfl's choice is certain, so every name it
// gives is the one libdwfl would give (tests/unit/symbolize compares the two
// on the system's libraries). libdwfl's rule (elfutils,
// dwfl_module_addrsym.c): among symbols with a name, a section, a size
// covering the address and a type other than SECTION/FILE/TLS, take the one
// that starts closest below the address, looking at the global table first
// and at local symbols only when no global one covers it; ties between
// symbols starting at the same address follow binding and size preferences;
// sizeless symbols (assembly labels) count only when nothing sized covers
// the address. The index decides the first case itself when one symbol alone
// starts closest. Aliases (several symbols of one table with the same start
// and size: malloc and __libc_malloc) are a tie whose winner does not depend
// on the address inside them, so libdwfl is asked once per alias group, the
// first time one is met. Other ties and sizeless cases are left to libdwfl.
#pragma once

#include <elfutils/libdwfl.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace memtop {

class SymbolIndex {
public:
    struct Hit {
        const char* name;  // owned by the module's ELF data, as libdwfl's
        uint64_t offset;   // address - symbol start
    };

    SymbolIndex() = default;
    // Reads `mod`'s symbol table (dwfl_module_getsymtab must succeed first).
    explicit SymbolIndex(Dwfl_Module* mod);

    // The symbol libdwfl would name for libdwfl address `addr`, when the
    // index is sure of it; nullopt when libdwfl must decide (ties, sizeless
    // symbols, nothing covering the address). Not thread-safe: settles alias
    // groups as it meets them.
    std::optional<Hit> find(uint64_t addr);

    size_t size() const { return globals_.size() + locals_.size(); }

private:
    // What is known of the symbols that share an entry's start.
    enum class Tie : uint8_t {
        None,       // no other symbol of the table starts there
        Aliases,    // all of the same size: libdwfl not asked yet
        Settled,    // aliases, and this entry is the one libdwfl names
        Passed,     // aliases, and another entry is the one libdwfl names
        Undecided,  // sizes differ, or libdwfl named none of them
    };
    struct Entry {
        uint64_t start;
        uint64_t end;  // start + st_size
        const char* name;
        Tie tie;
    };
    // Sorted by start. Also the largest end of any entry at or before each
    // index, so a search can tell whether any earlier symbol still covers addr.
    struct Table {
        std::vector<Entry> entries;
        std::vector<uint64_t> max_end;
        void seal();
        // The covering entry starting closest below addr (the first of its
        // tie group); `ambiguous` when libdwfl must decide.
        size_t closest(uint64_t addr, bool& ambiguous) const;
        // The entry of the tie group at `first` that libdwfl names, asking it
        // once; nullptr when undecided.
        const Entry* settle(size_t first, Dwfl_Module* mod);
        size_t size() const { return entries.size(); }
    };
    static constexpr size_t kNone = ~size_t(0);
    Dwfl_Module* mod_ = nullptr;
    Table globals_;
    Table locals_;
    // Starts of sizeless global symbols: one exactly at addr stops libdwfl
    // from looking at locals.
    std::vector<uint64_t> sizeless_global_starts_;
};

}  // namespace memtop
