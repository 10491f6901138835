// A named stack frame: what symbolization (symbolize/) makes of an address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memtop {

// A function inlined at an address (see Frame::inlined).
struct InlinedFrame {
    std::optional<std::string> function;  // demangled
    std::optional<std::string> file;
    std::optional<int> line;
};

// The file mapping an address is in, as its process mapped it: what a
// profile names the module by (pprof mappings), valid after the process is
// gone and on another host.
struct FrameMapping {
    uint64_t start = 0, end = 0, offset = 0;  // as in /proc/PID/maps
    std::string build_id;                     // hex; "" when the file has none or could not be read
};

// What ran at a frame: machine code, or a Python function (its frame in the
// interpreter, python/python_frames.h). A Python frame's address is its code
// object's; function, file and line are the code object's qualified name,
// file and the line it was at.
enum class FrameKind { Native, Python };

inline const char* frame_kind_name(FrameKind k) {
    return k == FrameKind::Python ? "python" : "native";
}

struct Frame {
    FrameKind kind = FrameKind::Native;
    uint64_t address = 0;
    std::optional<std::string> function;  // demangled; from the symbol table
    std::optional<uint64_t> offset;       // address - function start
    std::optional<std::string> module;    // mapped file's path, as in maps, or
                                          // "[perf-NSPID.map]" for a name from a perf map
    std::optional<std::string> file;      // source file, as in DWARF
    std::optional<int> line;
    // Inline chain at this address, innermost first; empty when nothing is
    // inlined there or without debug info. When it is not empty, file:line
    // is the call site inside `function` (the outermost inline call), and
    // inlined[i] holds the inlined function and the location inside it
    // (inlined[0]: the line-table location of the address itself).
    std::vector<InlinedFrame> inlined;
    std::optional<FrameMapping> mapping;  // file-backed addresses only
};

// What an address stands for.
enum class AddressKind {
    Return,  // a return address: looked up at address - 1 (the call)
    Exact,   // an instruction address, e.g. the IP at a probe or a function
};

}  // namespace memtop
