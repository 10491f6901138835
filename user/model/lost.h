// Everything that was not recorded, by reason: one counter per line of
// bpf/lost_counters.def (which says what each means), shown in every report
// in the list's order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>

namespace memtop {

enum class Lost : size_t {
#define LOST_COUNTER(id, name, text, brief, option) name,
#include "lost_counters.def"
#undef LOST_COUNTER
};

struct LostKind {
    Lost kind;
    const char* name;    // JSON field
    const char* text;    // the text report's words
    const char* brief;   // the live screen's words
    const char* option;  // what makes room for more ("" if nothing does)
};

inline constexpr LostKind kLostKinds[] = {
#define LOST_COUNTER(id, name, text, brief, option) {Lost::name, #name, text, brief, option},
#include "lost_counters.def"
#undef LOST_COUNTER
};

struct LostCounters {
    uint64_t count[std::size(kLostKinds)] = {};
    uint64_t& operator[](Lost k) { return count[static_cast<size_t>(k)]; }
    uint64_t operator[](Lost k) const { return count[static_cast<size_t>(k)]; }
};

}  // namespace memtop
