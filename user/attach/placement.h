// Where to put each allocator probe inside a library.
//
// A uprobe whose instruction the kernel can emulate (push, jmp, call, jcc,
// nop) costs one trap; any other instruction is single-stepped out of line,
// a second trap (field notes, section 2: glibc's free at `test %rdi,%rdi`
// costs four times free probed at its `push %rbp` nine bytes in). So each
// probe moves forward past instructions that cannot change what the BPF
// program reads (argument registers, the stack pointer) until it reaches one
// the kernel emulates. Functions that only jump to another allocator entry
// (libstdc++'s operator delete -> free, new[] -> new) are not probed at all:
// the target's probe sees the same caller and arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attach/elf_image.h"

namespace memtop {

// One BPF program per argument layout (bpf/heap.h).
enum class ProbeProgram {
    MallocEntry,
    NewEntry,      // operator new that allocates through malloc: the block is taken from that call
    NewOwnEntry,   // operator new with an allocator of its own: the block is taken at its returns
    NewNOwnEntry,  // the same for mimalloc's mi_new_n(count, size): count * size bytes
    CallocEntry,
    ReallocEntry,
    ReallocarrayEntry,
    MemalignEntry,
    PosixMemalignEntry,
    FreeEntry,
    ExceptionEntry,       // __cxa_allocate_exception: an operator new in flight is throwing
    SampledAllocEntry,    // memtop_sampled_alloc of the preloaded sampler (user/sampler/sampler.c)
    SampledFreeEntry,     // memtop_sampled_free of the preloaded sampler
    SampledPyAllocEntry,  // memtop_sampled_py_alloc: an object of CPython's allocator the sampler sampled
    SampledPyFreeEntry,   // memtop_sampled_py_free
    ReallocfEntry,        // realloc's arguments; a failed call frees the block (mi_reallocf)
    StrdupEntry,          // mi_strdup, mi_strndup: the size is the result's length + 1
    RealpathEntry,        // mi_realpath(name, resolved): a block only when resolved is NULL
    ExpandEntry,          // mi_expand(ptr, size): resizes in place, returns ptr or NULL
    XallocxEntry,         // jemalloc's xallocx(ptr, size, extra, flags): resizes in place, returns the real size
    // mimalloc's heap API (full BPF build, Linux 5.13+): the heap in rdi,
    // then the arguments of the plain call.
    MiHeapNewEntry,         // mi_heap_new: the heap it returns
    MiHeapDestroyEntry,     // mi_heap_destroy: frees every block of the heap
    MiHeapDeleteEntry,      // mi_heap_delete: the heap's blocks go to the backing heap
    MiHeapSetDefaultEntry,  // mi_heap_set_default: the heap plain calls use
    MiHeapMallocEntry,
    MiHeapCallocEntry,
    MiHeapReallocEntry,
    MiHeapReallocfEntry,
    MiHeapReallocnEntry,
    MiHeapStrdupEntry,
    MiHeapRealpathEntry,
};

const char* program_name(ProbeProgram p);

struct AllocatorSymbol {
    const char* name;
    ProbeProgram program;
    bool has_return;    // needs the return probe (allocations do, frees do not)
    unsigned arg_regs;  // arguments read at entry: 1 = rdi, 2 = rsi, 4 = rdx
    bool null_noop;     // f(NULL) does nothing (free, delete): may skip the NULL test
};

// Every allocator entry point memtop knows: glibc's malloc family, every
// libstdc++/libc++ operator new/new[]/delete/delete[] variant, and the own
// APIs of jemalloc (mallocx...), tcmalloc (tc_malloc...) and mimalloc
// (mi_malloc...). Names that are aliases of one function are probed once.
const std::vector<AllocatorSymbol>& allocator_symbols();

struct ProbeSite {
    std::string symbol;
    ProbeProgram program;
    bool has_return = false;
    uint64_t func_vaddr = 0;
    uint64_t insn_offset = 0;  // bytes into the function
    uint64_t file_offset = 0;  // where the uprobe goes
    bool emulated = false;     // the kernel emulates the probed instruction
    std::string instruction;   // e.g. "push rbp"
    std::string forwards_to;   // non-empty: not probed, jumps to this allocator
    // NewOwnEntry: file offsets of the `ret` instructions by which the call
    // returns (its own, and those of the functions it tail-calls), probed
    // with an entry-type uprobe each. A return probe would do it with one
    // trap less, but it replaces the return address on the stack and the C++
    // unwinder, finding no unwind info there, turns a bad_alloc thrown
    // through it into std::terminate.
    std::vector<uint64_t> return_sites;
    // Non-empty: memtop cannot take this function's result exactly, so it is
    // not probed, and this says why (shown once when the file is attached).
    std::string not_traced;
};

// Plans every allocator symbol `image` defines. Pure: reads only the image.
// memtop's own sampler library (it defines memtop_sampled_alloc) gets its two
// probe points only: its malloc family forwards to the next allocator.
std::vector<ProbeSite> plan_probes(const ElfImage& image);

}  // namespace memtop
