// /tmp/perf-PID.map: any text a JIT, or anyone who can write to /tmp, puts
// there. Parses it, builds the lookup table and checks what every lookup
// promises (a hit's range holds the address; entries never wrap).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "symbolize/perf_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    memtop::PerfMapLineCounts counts;
    auto entries = memtop::parse_perf_map(text, &counts);
    // Every non-empty line is kept or counted as skipped: what the report
    // says of a map adds up.
    size_t lines = 0;
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        size_t end = nl == std::string_view::npos ? text.size() : nl;
        size_t len = end - pos;
        if (len > 0 && text[end - 1] == '\r') --len;
        if (len > 0) ++lines;
        pos = end + 1;
    }
    if (counts.good != entries.size() || counts.good + counts.malformed + counts.absurd != lines) abort();
    memtop::PerfMap map;
    uint64_t overlapping = 0;
    for (const auto& e : entries) {
        if (e.size == 0 || e.start + e.size < e.start || e.name.empty()) abort();
        if (e.start + e.size > memtop::kPerfMapAddressLimit) abort();
        if (e.name.find('\n') != std::string::npos) abort();
        overlapping += map.add(e) ? 1 : 0;
    }
    if (overlapping > entries.size()) abort();
    if (map.pieces() > 2 * entries.size() + 1) abort();  // each add cuts at most one piece in two
    for (const auto& e : entries) {
        for (uint64_t a : {e.start, e.start + e.size - 1, e.start + e.size / 2, e.start + e.size}) {
            auto hit = map.find(a);
            if (hit && (hit->start > a || hit->name->empty())) abort();
        }
    }
    // The last entry added always names its own first address.
    if (!entries.empty()) {
        auto hit = map.find(entries.back().start);
        if (!hit || *hit->name != entries.back().name) abort();
    }
    return 0;
}
