// /tmp/perf-PID.map: any text a JIT, or anyone who can write to /tmp, puts
// there. Parses it, builds the lookup table and checks what every lookup
// promises (a hit's range holds the address; entries never wrap). Then
// reads it again as the symbolization worker reads the file (through a
// memfd, in chunks and per-request budgets as small as the input's first
// bytes say), which must find what the whole-text parser found.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "symbolize/perf_map.h"

namespace {

bool same(const memtop::PerfMapEntry& a, const memtop::PerfMapEntry& b) {
    return a.start == b.start && a.size == b.size && a.name == b.name;
}

// The worker's file reader against the whole-text parser.
void check_file_read(std::string_view text) {
    static int fd = memfd_create("fuzz_perf_map", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 0) != 0) abort();
    if (!text.empty() && pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) abort();
    const size_t chunk = 1 + (text.empty() ? 0 : static_cast<unsigned char>(text[0]) % 97);
    const uint64_t budget = text.size() > 1 ? static_cast<unsigned char>(text[1]) % 300 + 1 : 1;
    memtop::PerfMapCursor c;
    std::vector<memtop::PerfMapEntry> got;
    std::string rejected;
    // As memtop asks: again while the worker says there is more.
    for (int request = 0; request < 1 << 20; ++request) {
        bool more = false;
        const uint64_t before = c.consumed;
        rejected = memtop::read_perf_map_fd(
            fd, text.size(), budget, chunk, c,
            [&](uint64_t start, uint64_t size, std::string_view name) {
                got.push_back(memtop::PerfMapEntry{start, size, std::string(name)});
            },
            more);
        if (c.consumed < before || c.consumed > text.size()) abort();
        if (!rejected.empty() || !more) break;
        if (c.consumed == before) abort();  // "more" without progress would loop memtop
    }
    // Parsed up to a line's end, unless inside a line longer than a chunk.
    if (!c.in_long_line && c.consumed > 0 && text[c.consumed - 1] != '\n') abort();
    if (c.lines.good != got.size()) abort();
    if (rejected.empty() && c.consumed < text.size()) {
        // What is left is one unended line (or the rest of a long one).
        if (text.substr(c.consumed).find('\n') != std::string_view::npos && !c.in_long_line) abort();
    }
    // With no line as long as a chunk, the same entries as the whole text's
    // complete lines give (a prefix of them once rejected).
    size_t longest = 0;
    for (size_t pos = 0; pos <= text.size();) {
        size_t nl = text.find('\n', pos);
        size_t end = nl == std::string_view::npos ? text.size() : nl;
        longest = std::max(longest, end - pos);
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    if (longest >= chunk) return;
    if (c.in_long_line) abort();
    const size_t whole = text.rfind('\n');
    memtop::PerfMapLineCounts want_counts;
    auto want = memtop::parse_perf_map(whole == std::string_view::npos ? std::string_view() : text.substr(0, whole + 1),
                                       &want_counts);
    if (got.size() > want.size()) abort();
    for (size_t i = 0; i < got.size(); ++i)
        if (!same(got[i], want[i])) abort();
    if (rejected.empty() && (got.size() != want.size() || c.lines.malformed != want_counts.malformed ||
                             c.lines.absurd != want_counts.absurd))
        abort();
}

}  // namespace

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
    check_file_read(text);
    return 0;
}
