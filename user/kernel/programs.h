// Every BPF program memtop loads, one line each. The loader finds each one
// by name in whichever build loaded (full, or compat for Linux 5.10),
// decides whether it loads, and attaches the tracepoints and the iterator;
// the allocator programs are attached per file (Tracer::attach_library). A
// new program is its code in bpf/ plus one line here; a unit test checks
// that this list and the built objects name the same programs.
#pragma once

#include <cstddef>
#include <iterator>

#include "attach/placement.h"

namespace memtop {

enum class ProgramRole {
    AllocatorEntry,    // uprobe at an allocator's entry, one per argument layout
    AllocatorEntries,  // the six plain allocation entries in one program, by attach cookie
    NewEntries,        // operator new's three entries (NewEntry, NewOwnEntry, NewNOwnEntry), likewise
    AllocatorReturn,   // uretprobe of every allocation
    AllocatorRetSite,  // uprobe on the ret instructions of an operator new (NewOwnEntry)
    MimallocReturn,    // uretprobe of the calls of the mimalloc object's entry programs
    Tracepoint,        // attached once at load
    Iterator,          // run by user space before each report
    PythonAllocator,   // pymalloc's sites and functions in a CPython (Tracer::watch_python)
    PythonNewPool,     // allocate_from_new_pool's return (a session where the kernel has them)
    PythonFinalize,    // Py_FinalizeEx of a CPython memtop runs (Tracer::hold_python_at_finalize)
};

// What must be on for the program to load and run. Programs that need more
// than Always exist in the full build only.
enum class ProgramNeeds {
    Always,
    // The plain allocation entries (malloc, calloc, realloc, reallocarray,
    // memalign, posix_memalign), and operator new's: one program each
    // group, told by the attach cookie (Linux 6.6+, Tracer::load_variant),
    // else one program each entry (and in the compat build).
    EntryCookies,
    NoEntryCookies,
    NoSessions,    // the shared return program: where the kernel has no uprobe sessions (or they are off)
    GrowthStacks,  // --fault-sample > 0, bpf_loop and bpf_find_vma (5.17)
    Mappings,      // syscall tracepoints and bpf_task_pt_regs (5.15), not --no-mappings
    ExactRss,      // per-CPU resident-memory counters that can be summed (6.2+)
    // In the mimalloc object (bpf/mimalloc.bpf.c, full build only), loaded
    // at the attach of the first file that defines one of their symbols:
    Mimalloc,       // entry points some allocators add (mi_strdup, mi_expand, xallocx, ...)
    MiHeaps,        // mimalloc's heap API: also bpf_for_each_map_elem (5.13) frees a destroyed heap's blocks
    PythonDomain,   // uprobe_multi links (6.6), whose cookies carry each site's recipe
    PythonSampled,  // --python-objects: the in-process sampler's Python-domain points
    PythonFrames,   // Python frames in stacks: the full build
};

// Not in memtop's object but in the mimalloc object, loaded on demand.
constexpr bool on_demand(ProgramNeeds n) {
    return n == ProgramNeeds::Mimalloc || n == ProgramNeeds::MiHeaps;
}

struct ProgramSpec {
    const char* name;  // as in bpf/ (and the skeleton)
    ProgramRole role;
    ProgramNeeds needs;
    ProbeProgram entry;  // AllocatorEntry: which argument layout
};

inline constexpr ProgramSpec kPrograms[] = {
    {"malloc_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies, ProbeProgram::MallocEntry},
    {"new_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies, ProbeProgram::NewEntry},
    {"new_own_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies, ProbeProgram::NewOwnEntry},
    {"new_n_own_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies, ProbeProgram::NewNOwnEntry},
    {"calloc_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies, ProbeProgram::CallocEntry},
    {"realloc_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies, ProbeProgram::ReallocEntry},
    {"reallocarray_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies, ProbeProgram::ReallocarrayEntry},
    {"memalign_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies, ProbeProgram::MemalignEntry},
    {"posix_memalign_entry", ProgramRole::AllocatorEntry, ProgramNeeds::NoEntryCookies,
     ProbeProgram::PosixMemalignEntry},
    {"free_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Always, ProbeProgram::FreeEntry},
    {"exception_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Always, ProbeProgram::ExceptionEntry},
    {"sampled_alloc_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Always, ProbeProgram::SampledAllocEntry},
    {"sampled_free_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Always, ProbeProgram::SampledFreeEntry},
    {"reallocf_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Mimalloc, ProbeProgram::ReallocfEntry},
    {"strdup_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Mimalloc, ProbeProgram::StrdupEntry},
    {"realpath_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Mimalloc, ProbeProgram::RealpathEntry},
    {"expand_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Mimalloc, ProbeProgram::ExpandEntry},
    {"xallocx_entry", ProgramRole::AllocatorEntry, ProgramNeeds::Mimalloc, ProbeProgram::XallocxEntry},
    {"mi_heap_new_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapNewEntry},
    {"mi_heap_destroy_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapDestroyEntry},
    {"mi_heap_delete_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapDeleteEntry},
    {"mi_heap_set_default_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps,
     ProbeProgram::MiHeapSetDefaultEntry},
    {"mi_heap_malloc_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapMallocEntry},
    {"mi_heap_calloc_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapCallocEntry},
    {"mi_heap_realloc_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapReallocEntry},
    {"mi_heap_reallocf_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapReallocfEntry},
    {"mi_heap_reallocn_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapReallocnEntry},
    {"mi_heap_strdup_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapStrdupEntry},
    {"mi_heap_realpath_entry", ProgramRole::AllocatorEntry, ProgramNeeds::MiHeaps, ProbeProgram::MiHeapRealpathEntry},
    {"alloc_entry", ProgramRole::AllocatorEntries, ProgramNeeds::EntryCookies, {}},
    {"op_new_entry", ProgramRole::NewEntries, ProgramNeeds::EntryCookies, {}},
    {"alloc_return", ProgramRole::AllocatorReturn, ProgramNeeds::NoSessions, {}},
    {"alloc_ret_site", ProgramRole::AllocatorRetSite, ProgramNeeds::Always, {}},
    {"mi_alloc_return", ProgramRole::MimallocReturn, ProgramNeeds::Mimalloc, {}},
    {"process_exec", ProgramRole::Tracepoint, ProgramNeeds::Always, {}},
    {"process_exit", ProgramRole::Tracepoint, ProgramNeeds::Always, {}},
    {"rss_stat", ProgramRole::Tracepoint, ProgramNeeds::Always, {}},
    {"page_fault_user", ProgramRole::Tracepoint, ProgramNeeds::GrowthStacks, {}},
    {"mmap_exit", ProgramRole::Tracepoint, ProgramNeeds::Mappings, {}},
    {"munmap_enter", ProgramRole::Tracepoint, ProgramNeeds::Mappings, {}},
    {"mremap_exit", ProgramRole::Tracepoint, ProgramNeeds::Mappings, {}},
    {"brk_enter", ProgramRole::Tracepoint, ProgramNeeds::Mappings, {}},
    {"brk_exit", ProgramRole::Tracepoint, ProgramNeeds::Mappings, {}},
    {"rss_exact", ProgramRole::Iterator, ProgramNeeds::ExactRss, {}},
    {"py_site", ProgramRole::PythonAllocator, ProgramNeeds::PythonDomain, {}},
    {"py_new_pool_return", ProgramRole::PythonNewPool, ProgramNeeds::PythonDomain, {}},
    {"py_finalize", ProgramRole::PythonFinalize, ProgramNeeds::PythonFrames, {}},
    {"py_sampled_alloc_entry", ProgramRole::AllocatorEntry, ProgramNeeds::PythonSampled,
     ProbeProgram::SampledPyAllocEntry},
    {"py_sampled_free_entry", ProgramRole::AllocatorEntry, ProgramNeeds::PythonSampled,
     ProbeProgram::SampledPyFreeEntry},
};
inline constexpr size_t kProgramCount = std::size(kPrograms);

// The allocation entries whose calls return a block. Where the kernel has
// uprobe sessions, their entry programs are loaded as session programs and
// take the return themselves, trapping it only when they need it
// (bpf/heap.h); alloc_return is then attached nowhere, and not loaded. So is pymalloc's
// allocate_from_new_pool (bpf/pymalloc.h): its return is trapped only for a
// site that left a size waiting, a sampled one under sampling.
constexpr bool session_entry(const ProgramSpec& p) {
    if (p.role == ProgramRole::PythonNewPool || p.role == ProgramRole::AllocatorEntries) return true;
    if (p.role != ProgramRole::AllocatorEntry) return false;
    switch (p.entry) {
        case ProbeProgram::MallocEntry:
        case ProbeProgram::CallocEntry:
        case ProbeProgram::ReallocEntry:
        case ProbeProgram::ReallocarrayEntry:
        case ProbeProgram::MemalignEntry:
        case ProbeProgram::PosixMemalignEntry:
        case ProbeProgram::ReallocfEntry:
        case ProbeProgram::StrdupEntry:
        case ProbeProgram::RealpathEntry:
        case ProbeProgram::ExpandEntry:
        case ProbeProgram::XallocxEntry:
        case ProbeProgram::MiHeapNewEntry:
        case ProbeProgram::MiHeapMallocEntry:
        case ProbeProgram::MiHeapCallocEntry:
        case ProbeProgram::MiHeapReallocEntry:
        case ProbeProgram::MiHeapReallocfEntry:
        case ProbeProgram::MiHeapReallocnEntry:
        case ProbeProgram::MiHeapStrdupEntry:
        case ProbeProgram::MiHeapRealpathEntry:
            return true;
        default:
            return false;
    }
}

}  // namespace memtop
