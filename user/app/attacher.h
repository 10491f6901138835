// Putting the probes where the command line said: -p's processes, -- CMD
// (held at its gate until every probe is on), and the allocator files of
// every process of the host or of a cgroup, rescanned for new ones. Glue
// between attach/ (which files, where in them) and kernel/ (the links).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "app/options.h"
#include "attach/command.h"
#include "attach/program_files.h"
#include "attach/targets.h"
#include "kernel/tracer.h"

namespace memtop {

class Attacher {
public:
    // cgroup_dir: --cgroup/--container's v2 directory, "" otherwise.
    Attacher(const Options& opt, Tracer& tracer, std::string cgroup_dir);

    // -p: attaches every pid of the command line; logs what was done.
    // Throws MemtopError naming the pid and why.
    void attach_pids();
    // One process, as -p attaches it (the screen's `t` too); returns what
    // was attached, for the log. Throws MemtopError.
    std::string attach_pid(int pid);
    // -- CMD: forks it at its gate, attaches, lets it exec.
    void start_command();
    // -- CMD (or with -f a process it started) has exec'd a program (CMD itself, or what CMD runs in its place:
    // `env LD_PRELOAD=lib prog`, `sh -c prog`), stopped before its loader
    // runs: probes the allocator files it will load that are not probed yet
    // (an LD_PRELOAD'ed or linked jemalloc, tcmalloc, mimalloc).
    void command_exec(int pid);
    // -f: a process CMD (or one it started) forked, stopped before it runs:
    // probes its allocator files for it.
    void command_fork(int pid);
    // --heap-all, --cgroup: every allocator file of the processes (of the
    // cgroup), for every process mapping it; files seen before are skipped.
    void scan_host();
    // --heap-all, --cgroup: a stack was stored for this process instance
    // (the kernel's event): a CPython among them gets Python frames from
    // then on. Checked once per instance; cheap when the kernel has its
    // layout already.
    void stack_seen(uint32_t pid, uint32_t epoch);

    // The -p targets that are gone are dropped (and logged); true when none
    // is left.
    bool targets_gone();
    TracedCommand* command() { return cmd_.get(); }
    // No malloc but glibc's has been probed: glibc's footprint rules
    // (model/footprint.h) hold for every heap block.
    bool glibc_heap() const { return !other_malloc_; }
    const std::string& cgroup_dir() const { return cgroup_dir_; }

private:
    // Probes one allocator file for `pid` (-1: all), says what it leaves
    // out; returns the number of probes.
    size_t attach_file(const LibraryFile& f, int pid);
    // A target's growth and mappings are recorded before its first heap
    // allocation.
    void watch_target(int pid);
    // A CPython process gets Python frames in its heap stacks.
    // sampler_loaded: memtop's sampler is preloaded in it (--sample -- CMD),
    // which samples its Python objects too when it can (--python-objects).
    void watch_python(int pid, const std::vector<Mapping>& maps, bool sampler_loaded = false);
    // A CPython memtop runs (ptraced): held at Py_FinalizeEx while its
    // Python stacks are named (Tracer::hold_python_at_finalize).
    void hold_python(int pid);
    // The sampler is among a process's probed files.
    bool has_sampler(const std::vector<LibraryFile>& files) const;
    // The files `exe` will load at start (with `env`, or memtop's own) that
    // define an allocator; tables every one of them on the way.
    std::vector<LibraryFile> loaded_allocator_files(const std::string& exe, const std::vector<std::string>* env,
                                                    const RunAs* as = nullptr);
    // --sample -- CMD with the sampler preloaded: of a process's allocator
    // files, the sampler alone when it is among them (its probe points see
    // every sampled call; probes on the allocator under it would count them
    // twice); otherwise all of them (sampled in the probes), said once.
    std::vector<LibraryFile> sampler_only(std::vector<LibraryFile> files, int pid);

    const Options& opt_;
    Tracer& tracer_;
    std::string cgroup_dir_;
    AllocatorFinder finder_;
    std::unique_ptr<TracedCommand> cmd_;
    std::set<std::pair<uint64_t, uint64_t>> host_files_;  // --heap-all, --cgroup: files attached
    std::set<int> live_pids_;                             // -p targets still running
    std::set<int> scanned_pids_;                          // cgroup processes whose files have tables
    std::set<int> python_scanned_;  // --heap-all, --cgroup: pids of the last scan, checked for CPython
    std::set<std::pair<uint32_t, uint32_t>> python_checked_;  // (pid, epoch) instances checked for CPython
    std::map<int, std::set<std::pair<uint64_t, uint64_t>>> command_files_;  // -- CMD: files probed, per process
    bool other_malloc_ = false;                                             // a malloc not glibc's is probed
    bool preload_ = false;                        // the sampler is preloaded into CMD (--sample: it samples the heap)
    bool py_preload_ = false;                     // the Python-only sampler is (--python-objects: the heap stays exact)
    std::string py_refused_;                      // why the Python-only sampler could not be preloaded
    std::pair<uint64_t, uint64_t> sampler_id_{};  // its file's (dev, ino)
};

}  // namespace memtop
