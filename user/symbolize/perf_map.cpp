#include "symbolize/perf_map.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <iterator>

namespace memtop {
namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

// A hex number with an optional "0x"/"0X" at the front of `s`, removed.
// It must be followed by a blank: "12zz" is not a number.
bool take_hex(std::string_view& s, uint64_t& out) {
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
    if (ec != std::errc() || ptr == s.data()) return false;
    s.remove_prefix(static_cast<size_t>(ptr - s.data()));
    return !s.empty() && is_blank(s.front());
}

void skip_blanks(std::string_view& s) {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
}

enum class LineKind { Good, Malformed, Absurd };

LineKind parse_line(std::string_view line, uint64_t& start, uint64_t& size, std::string_view& name) {
    skip_blanks(line);
    if (!take_hex(line, start)) return LineKind::Malformed;
    skip_blanks(line);
    if (!take_hex(line, size)) return LineKind::Malformed;
    skip_blanks(line);
    // The name is everything else, inner and trailing spaces included: perf
    // keeps them too, and JITs put signatures there.
    if (line.empty()) return LineKind::Malformed;
    if (size == 0 || size > kMaxPerfMapEntrySize || start >= kPerfMapAddressLimit ||
        size > kPerfMapAddressLimit - start)
        return LineKind::Absurd;
    name = line;
    return LineKind::Good;
}

}  // namespace

void parse_perf_map(std::string_view text, PerfMapLineCounts* counts, const PerfMapSink& sink) {
    PerfMapLineCounts n;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        uint64_t start = 0, size = 0;
        std::string_view name;
        switch (parse_line(line, start, size, name)) {
            case LineKind::Good:
                sink(start, size, name);
                ++n.good;
                break;
            case LineKind::Malformed:
                ++n.malformed;
                break;
            case LineKind::Absurd:
                ++n.absurd;
                break;
        }
    }
    if (counts) *counts += n;
}

std::vector<PerfMapEntry> parse_perf_map(std::string_view text, PerfMapLineCounts* counts) {
    std::vector<PerfMapEntry> out;
    parse_perf_map(text, counts, [&](uint64_t start, uint64_t size, std::string_view name) {
        out.push_back(PerfMapEntry{start, size, std::string(name)});
    });
    return out;
}

std::string read_perf_map_fd(int fd, uint64_t end, uint64_t budget, size_t chunk, PerfMapCursor& c,
                             const PerfMapSink& sink, bool& more) {
    more = false;
    if (chunk == 0) return "";
    std::string buf;
    const uint64_t from = c.consumed;
    while (c.consumed < end) {
        if (c.consumed - from >= budget) {
            more = true;
            return "";
        }
        const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk, end - c.consumed));
        buf.resize(want);
        size_t got = 0;
        while (got < want) {
            ssize_t n = ::pread(fd, buf.data() + got, want - got, off_t(c.consumed + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += size_t(n);
        }
        if (got == 0) return "";
        std::string_view text(buf.data(), got);
        if (c.in_long_line) {  // the rest of a line already counted as malformed
            const size_t nl = text.find('\n');
            if (nl == std::string_view::npos) {
                if (got < chunk) return "";  // still not ended: look again next time
                c.consumed += got;
                continue;
            }
            text.remove_prefix(nl + 1);
            c.consumed += nl + 1;
            c.in_long_line = false;
        }
        const size_t whole = text.rfind('\n');
        if (whole == std::string_view::npos) {
            if (text.size() == chunk) {
                // A line longer than a whole chunk: no JIT writes one.
                ++c.lines.malformed;
                c.consumed += text.size();
                c.in_long_line = true;
                continue;
            }
            if (text.data() != buf.data()) continue;  // read on from that line's start
            return "";                                // the last line, not ended yet
        }
        text = text.substr(0, whole + 1);
        parse_perf_map(text, &c.lines, sink);
        c.consumed += text.size();
        if (c.lines.malformed >= kNotAPerfMapLines && c.lines.malformed > c.lines.good)
            return "not a perf map: " + std::to_string(c.lines.malformed) + " of its first " +
                   std::to_string(c.lines.malformed + c.lines.good + c.lines.absurd) + " lines malformed";
    }
    return "";
}

bool PerfMap::add(uint64_t start, uint64_t size, std::string_view name) {
    if (size == 0 || start + size < start) return false;
    bool overlapped = false;
    const uint64_t lo = start, hi = start + size;
    // Cut away what older pieces have in [lo, hi), keeping their parts
    // outside it. The first piece that may reach into the range starts
    // before lo.
    auto it = pieces_.lower_bound(lo);
    if (it != pieces_.begin()) {
        auto prev = std::prev(it);
        if (prev->second.end > lo) {
            overlapped = true;
            Piece tail = prev->second;
            prev->second.end = lo;                         // the part before lo stays
            if (tail.end > hi) pieces_.emplace(hi, tail);  // the new range is inside it
        }
    }
    while (it != pieces_.end() && it->first < hi) {
        overlapped = true;
        if (it->second.end > hi) pieces_.emplace(hi, it->second);  // its part after hi stays
        it = pieces_.erase(it);
    }
    names_.emplace_back(name);
    pieces_[lo] = Piece{hi, lo, names_.size() - 1};
    return overlapped;
}

std::optional<PerfMap::Hit> PerfMap::find(uint64_t addr) const {
    auto it = pieces_.upper_bound(addr);
    if (it == pieces_.begin()) return std::nullopt;
    --it;
    if (addr >= it->second.end) return std::nullopt;
    return Hit{&names_[it->second.name], it->second.start};
}

}  // namespace memtop
