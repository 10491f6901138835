// Reads CPython code objects out of a live process (process_vm_readv): the
// name, file and line table that turn a (code object, instruction) pair the
// BPF side recorded into `function (file.py:line)`.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "python/layout.h"
#include "python/linetable.h"

namespace memtop {

// What a code object says about itself.
struct CodeInfo {
    std::string qualname, file;
    int firstlineno = 0;
    std::vector<LineRange> lines;
};

// One process's code objects, cached by address. A code object can be freed
// and its address reused by another one: every lookup reads the object's
// header again (one read) and decodes it anew when the fields that name it
// (type, file, name, line table pointers, first line) changed.
class CodeReader {
public:
    // cwd: the process's working directory, which relative file names
    // (`python3 app.py` names its code objects "app.py") are taken from.
    CodeReader(int pid, const PythonLayout& layout, std::string cwd = "")
        : pid_(pid), layout_(layout), cwd_(std::move(cwd)) {}

    // nullopt: the process is gone or the address holds no code object.
    const CodeInfo* code(uint64_t addr);
    // The line of instruction `instr` (prev_instr, an address inside
    // co_code_adaptive) of the code object at addr.
    std::optional<int> line(const CodeInfo& c, uint64_t addr, uint64_t instr) const;
    // The last read failed because the process is gone.
    bool gone() const { return gone_; }

private:
    bool read(uint64_t addr, void* out, size_t len);
    std::optional<std::string> read_str(uint64_t obj);
    std::optional<std::string> read_bytes(uint64_t obj);

    struct Entry {
        std::vector<uint8_t> header;  // the fields compared on each lookup
        CodeInfo info;
    };
    int pid_;
    const PythonLayout& layout_;
    std::string cwd_;
    bool gone_ = false;
    std::map<uint64_t, Entry> cache_;
};

}  // namespace memtop
