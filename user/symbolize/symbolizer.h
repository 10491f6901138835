// Address -> function, file:line for user-space addresses of a process,
// with elfutils libdwfl, run in an unprivileged, seccomp-confined worker
// process (sandbox.h) to which memtop hands the descriptors it opened. Modules are cached by file identity (dev, ino),
// never by pid: one libc serves every process. Code no ELF file names (JIT
// code) is named from the process's perf map, kept per pid.
#pragma once

#include <sys/types.h>
#include <cstddef>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/frame.h"
#include "model/report.h"
#include "procinfo/proc_maps.h"

namespace memtop {

// Not thread-safe: use one per thread or serialize calls.
class Symbolizer {
public:
    Symbolizer();
    ~Symbolizer();
    Symbolizer(Symbolizer&&) noexcept;
    Symbolizer& operator=(Symbolizer&&) noexcept;
    Symbolizer(const Symbolizer&) = delete;
    Symbolizer& operator=(const Symbolizer&) = delete;

    // Names a return address of process `pid` whose mappings are `maps` (a
    // snapshot, possibly taken before the process died). The symbol and the
    // line are looked up at address - 1; offset is relative to `address`.
    // Never throws; unknown fields stay nullopt.
    Frame resolve(int pid, const std::vector<Mapping>& maps, uint64_t address) noexcept;
    Frame resolve(int pid, const std::vector<Mapping>& maps, uint64_t address, AddressKind kind) noexcept;

    // One frame per address, in order. All addresses are return addresses,
    // except addresses[0] when `first` is AddressKind::Exact (a stack taken
    // at a probe, whose first entry is the probed instruction).
    std::vector<Frame> resolve_stack(int pid, const std::vector<Mapping>& maps, const std::vector<uint64_t>& addresses,
                                     AddressKind first = AddressKind::Return);

    // Many stacks at once (a report): prefetch() each stack's addresses
    // (as resolve_stack() would take them), then flush_prefetched() names
    // them all in one request per file to the worker, after which
    // resolve_stack() on those stacks finds every name cached. Without it
    // each resolve_stack() costs a round trip to the worker per file.
    void prefetch(int pid, const std::vector<Mapping>& maps, const std::vector<uint64_t>& addresses,
                  AddressKind first = AddressKind::Return) noexcept;
    void flush_prefetched() noexcept;

    // An address that no ELF file names (anonymous executable memory, or a
    // mapped file without a symbol there) is looked up in the perf map that
    // JITs write, /tmp/perf-NSPID.map, read inside the process's own root
    // (/proc/PID/root) with the pid of its own pid namespace (NSpid). That
    // file is read when first needed and read again, from where it was left,
    // when it grows (JITs append); what was read is kept after the file or
    // the process is gone, until forget_process().
    //
    // Reads (what was appended to) the perf map of live process `pid` now.
    // Call it while the process is alive, e.g. when a stack of its first
    // shows up, so that a final report names its JIT frames even if it removes
    // the file or exits before the report.
    void refresh_perf_map(int pid) noexcept;
    // Drops what is kept of process `pid` (its perf map): call it once the
    // process's final numbers are reported, or when it execs another image.
    void forget_process(int pid) noexcept;

    // What became of process `pid`'s perf map: read (lines used, skipped
    // and why), refused (why), or read in part. Nullopt when the process has
    // none (none was found when it was looked for) or it was forgotten.
    std::optional<PerfMapNote> perf_map_note(int pid) const;

    // The files frames were looked up in, since the last call, whose
    // symbols or DWARF could not be read, or that are not ELF files memtop
    // can read (corrupt, truncated): once per file, with what went wrong.
    std::vector<SymbolFileNote> take_file_notes() noexcept;

    // The files are parsed by a worker process without privileges
    // (sandbox.h), started when first needed and again after it crashed or
    // hung on a file: that file's frames stay unnamed and take_file_notes()
    // says why. Its pid, 0 when none runs.
    pid_t worker_pid() const;
    // Test seam: the worker calls `hook` with each file's path before it
    // reads the file. Tests make it crash on one file, to check what
    // memtop does when a (hostile) file crashes libdw; memtop never sets it.
    using WorkerFileHook = void (*)(const std::string& path);
    static void set_worker_file_hook_for_tests(WorkerFileHook hook);

    // Number of ELF files opened and kept.
    size_t cached_modules() const;
    // Of those, loaded in the worker now (libdw's data of them held).
    size_t loaded_modules() const;
    // Ends a naming pass (a report): the files no pass needed in the last
    // `idle_passes` are unloaded from the worker, which gives the memory
    // back; the names they gave stay cached, and a new address in one loads
    // it again. An idle host's system view otherwise kept every file it
    // ever named loaded (86 MiB of the worker's after 30 s).
    void release_idle(uint64_t idle_passes) noexcept;
    // Entries named by the perf map kept for `pid` (0 when none was read).
    size_t perf_map_pieces(int pid) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace memtop
