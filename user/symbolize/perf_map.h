// Perf maps: the names a JIT gives its generated code, in /tmp/perf-PID.map
// (the convention perf(1) reads; Python 3.12 `-X perf`, node
// `--perf-basic-prof` and Java perf-map agents write it). No ELF file
// describes JIT code, so this is the only way to name those frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memtop {

// One line of a perf map: code [start, start + size) is `name`.
struct PerfMapEntry {
    uint64_t start = 0;
    uint64_t size = 0;
    std::string name;
};

// No JIT emits one piece of code this large; a line claiming it (a garbled
// or hostile map) would otherwise name every unnamed frame in its range.
constexpr uint64_t kMaxPerfMapEntrySize = 1ull << 30;
// No user-space address reaches this (57 bits: x86-64 with 5-level paging;
// arm64 has at most 52): code said to lie past it is not code of the process.
constexpr uint64_t kPerfMapAddressLimit = 1ull << 57;

// Lines of a perf map that parse_perf_map() skipped, by reason, so that a
// report can say what of a map was not used rather than drop it silently.
struct PerfMapLineCounts {
    uint64_t good = 0;       // entries returned
    uint64_t malformed = 0;  // not "START SIZE NAME" (or NAME empty)
    uint64_t absurd = 0;     // a SIZE of 0 or over kMaxPerfMapEntrySize, or past kPerfMapAddressLimit
    PerfMapLineCounts& operator+=(const PerfMapLineCounts& o) {
        good += o.good;
        malformed += o.malformed;
        absurd += o.absurd;
        return *this;
    }
};

// Parses the text of a perf map. Pure. Lines are "START SIZE NAME": START
// and SIZE in hex, with or without "0x"; NAME is the rest of the line and
// may contain spaces (C++ signatures, "LazyCompile:*f file.js:1:2"). Fields
// are separated by spaces or tabs; a trailing '\r' is dropped. Lines that do
// not parse or have an empty NAME (malformed), and lines with a SIZE of 0 or
// over kMaxPerfMapEntrySize or a range past kPerfMapAddressLimit (absurd)
// are skipped; empty lines are neither kept nor counted. `counts`, when
// given, is added what was kept and skipped. Entries keep the file's order
// (the order matters: see PerfMap).
std::vector<PerfMapEntry> parse_perf_map(std::string_view text, PerfMapLineCounts* counts = nullptr);

// An entry as parsed, its name a view into the text parsed.
using PerfMapSink = std::function<void(uint64_t start, uint64_t size, std::string_view name)>;
// parse_perf_map() handing each entry to `sink` rather than keeping it (no
// copy of the name is made).
void parse_perf_map(std::string_view text, PerfMapLineCounts* counts, const PerfMapSink& sink);

// A perf map file is read in pieces of this size: memory for the text read
// stays this small.
constexpr size_t kPerfMapChunk = size_t(1) << 20;
// A file with at least this many malformed lines, and more malformed lines
// than good ones, is not a perf map (random bytes, a binary, another
// program's text): none of it is used. A real map's few bad lines (a JIT
// that died mid-write) stay under it.
constexpr uint64_t kNotAPerfMapLines = 16;

// Where a perf map file was parsed up to. The symbolization worker parses
// the file and keeps nothing between requests: memtop keeps this.
struct PerfMapCursor {
    uint64_t consumed = 0;      // bytes parsed: up to the end of the last whole line
    bool in_long_line = false;  // consumed ends inside a line longer than a chunk
    PerfMapLineCounts lines;    // of the whole file so far (the rejection rule counts them)
};

// Parses what of the perf map open at `fd` lies past c.consumed, up to
// `end`, in pieces of `chunk` bytes (kPerfMapChunk; tests and the fuzzer
// use smaller ones) and stops once it has parsed `budget` bytes (`more`
// then says so). Whole lines only: the JIT may be in the middle of writing
// the last one, which is read again next time; a line longer than a chunk
// counts as one malformed line. Hands the entries to `sink`, in order, and
// advances `c`. Returns why the file is not a perf map (the
// kNotAPerfMapLines rule), else "".
std::string read_perf_map_fd(int fd, uint64_t end, uint64_t budget, size_t chunk, PerfMapCursor& c,
                             const PerfMapSink& sink, bool& more);

// The code ranges of a perf map, for lookups. A JIT reuses memory: when
// code is freed and other code is generated at the same place it appends a
// new line, so where entries overlap the one added later wins (only the
// overlapped part of the earlier one is lost).
class PerfMap {
public:
    struct Hit {
        const std::string* name;  // valid until the next add() or the PerfMap's end
        uint64_t start;           // the entry's own start (offsets are from here)
    };

    // Returns whether the entry overlapped code that entries added before
    // it named (which it now names instead).
    bool add(const PerfMapEntry& e) { return add(e.start, e.size, e.name); }
    bool add(uint64_t start, uint64_t size, std::string_view name);
    // Returns how many of `entries` overlapped earlier ones.
    uint64_t add(const std::vector<PerfMapEntry>& entries) {
        uint64_t overlapping = 0;
        for (const auto& e : entries) overlapping += add(e) ? 1 : 0;
        return overlapping;
    }
    // The entry whose range holds `addr`, if any.
    std::optional<Hit> find(uint64_t addr) const;
    // Non-overlapping pieces the entries were cut into (>= named ranges).
    size_t pieces() const { return pieces_.size(); }
    void clear() {
        pieces_.clear();
        names_.clear();
    }

private:
    struct Piece {
        uint64_t end;    // one past the last address of the piece
        uint64_t start;  // start of the entry it belongs to
        size_t name;     // index into names_
    };
    std::map<uint64_t, Piece> pieces_;  // by piece start; never overlapping
    std::vector<std::string> names_;
};

}  // namespace memtop
