// An ELF file's function symbols, load segments and PLT slots, read through
// libelf. Used to find allocator entry points and to look at their first
// instructions before a probe is placed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace memtop {

// A PT_LOAD segment, as the program headers give it.
struct LoadSegment {
    uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0;
    bool exec = false;  // PF_X: code the kernel maps executable (where a uprobe can go)
};

struct ElfFunction {
    std::string name;    // without symbol version
    uint64_t vaddr = 0;  // link-time address
    uint64_t size = 0;
};

class ElfImage {
public:
    // Reads the file's headers and the function symbols named in `wanted`
    // (all of them when empty). The file is mapped, not read: a 100 MB
    // library costs only the pages its symbol tables touch.
    // Throws MemtopError naming the file and the reason on failure.
    static std::unique_ptr<ElfImage> open(const std::string& path, const std::vector<std::string>& wanted = {});
    // The same on a descriptor the image takes over (closes), `path` only
    // for messages: the confined worker (kernel/unwind/cfi_worker) cannot
    // open files, memtop hands it the descriptor.
    static std::unique_ptr<ElfImage> open_fd(int fd, const std::string& path,
                                             const std::vector<std::string>& wanted = {});
    ~ElfImage();
    ElfImage(const ElfImage&) = delete;
    ElfImage& operator=(const ElfImage&) = delete;

    const std::string& path() const { return path_; }
    uint64_t file_size() const { return size_; }
    // Has a PT_INTERP: dynamically linked, its libc comes from elsewhere.
    bool dynamic() const { return dynamic_; }
    // The PT_INTERP path (the dynamic loader), empty for a static file.
    const std::string& interpreter() const { return interpreter_; }
    // Defined (not imported) function from .dynsym or .symtab.
    std::optional<ElfFunction> function(const std::string& name) const;
    // Has any function symbol (of those asked for): false for a stripped
    // static program, whose allocator then has no name to probe.
    bool has_functions() const { return !functions_.empty(); }
    // Has any function symbol at all, asked for or not.
    bool defines_functions() const { return defines_functions_; }
    // A defined symbol of any type among those asked for (an object, such
    // as CPython's _PyRuntime): a function's address as function() gives
    // it, else the first other symbol's. Only when `wanted` was not empty.
    std::optional<uint64_t> symbol(const std::string& name) const;
    // Function containing vaddr, if any.
    std::optional<ElfFunction> function_at(uint64_t vaddr) const;
    // The PT_LOAD segments, in program-header order.
    const std::vector<LoadSegment>& segments() const { return segments_; }
    // ET_EXEC: link-time addresses are the process's.
    bool position_dependent() const { return position_dependent_; }
    // Link-time address -> file offset, through the PT_LOAD segments.
    std::optional<uint64_t> file_offset(uint64_t vaddr) const;
    // Up to `len` bytes of the file image at vaddr (fewer at a segment end).
    std::vector<uint8_t> bytes(uint64_t vaddr, size_t len) const;
    // Symbol that the PLT stub at vaddr jumps to, if vaddr is a PLT stub.
    std::optional<std::string> plt_target(uint64_t vaddr) const;
    // The [start, end) of the function (or function part: a .cold split has
    // its own) that contains vaddr, from the file's call frame information
    // (.eh_frame), which covers local functions that have no symbol. Every
    // instruction boundary from start on is certain: x86-64 compilers put no
    // data inside a function's range.
    std::optional<std::pair<uint64_t, uint64_t>> code_range(uint64_t vaddr) const;
    // Every such [start, end), sorted: the file's code, instruction-aligned.
    const std::vector<std::pair<uint64_t, uint64_t>>& code_ranges() const;

private:
    ElfImage() = default;
    std::string path_;
    bool dynamic_ = false;
    bool position_dependent_ = false;
    bool defines_functions_ = false;
    std::string interpreter_;
    int fd_ = -1;
    const uint8_t* data_ = nullptr;  // the mapped file
    size_t size_ = 0;
    std::vector<LoadSegment> segments_;
    std::map<std::string, ElfFunction> functions_;
    std::map<std::string, uint64_t> objects_;  // wanted symbols that are not functions: the first of each name
    std::map<uint64_t, ElfFunction> by_addr_;
    std::map<uint64_t, std::string> got_slots_;  // GOT slot vaddr -> imported symbol
    // Opened on the first code_range() call; most images never need them.
    mutable std::optional<std::vector<std::pair<uint64_t, uint64_t>>> fdes_;
};

}  // namespace memtop
