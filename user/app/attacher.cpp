#include "app/attacher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "app/sampler_preload.h"
#include "attach/program_files.h"
#include "procinfo/proc_status.h"
#include "procinfo/processes.h"
#include "util/errors.h"
#include "util/unique_fd.h"

namespace memtop {

namespace {
void log(const std::string& msg) {
    fprintf(stderr, "memtop: %s\n", msg.c_str());
}

// A file the kernel runs through its "#!" line.
bool is_script(const std::string& path) {
    char head[2] = {};
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    return fd && ::read(fd.get(), head, sizeof head) == 2 && head[0] == '#' && head[1] == '!';
}

// Gone, or a zombie: its memory is gone either way.
bool process_exited(int pid) {
    if (kill(pid, 0) != 0) return errno == ESRCH;
    auto st = read_proc_stat(pid);
    if (!st) return !process_alive(pid);
    return st->state == 'Z' || st->state == 'X';
}

// Why a process cannot be traced, as the user should read it: a process
// that exited while memtop read its files did not fail to have them.
[[noreturn]] void attach_failed(int pid, const std::string& who, const MemtopError& e) {
    if (process_exited(pid)) throw MemtopError(kExitNoTarget, "trace " + who + ": it exited");
    throw e;
}

// What to say of a process whose files define no malloc: memtop counts the
// malloc family, which Go and some static programs never call; the system
// view still has their resident memory.
std::string no_allocator(const std::string& what) {
    return what +
           ": memtop traces calls to malloc, free and operator new, and this program makes none through any "
           "file it maps (a Go program, or one with its own allocator?); memtop without a target shows its "
           "resident memory, growth and mappings";
}
}  // namespace

size_t Attacher::attach_file(const LibraryFile& f, int pid) {
    const AttachedLibrary& lib = tracer_.attach_library(f.open_path, f.path, pid);
    // Said once per file: these calls are not counted at all, rather than
    // counted wrong.
    for (const auto& why : lib.not_traced) log("warning: " + f.path + ": " + why + "; not traced");
    // A malloc of another file than glibc's libc (jemalloc, tcmalloc,
    // mimalloc, a static build): glibc's footprint rules no longer apply.
    std::string base = f.path.substr(f.path.rfind('/') + 1);
    bool glibc = base.rfind("libc.so", 0) == 0 || base.rfind("libc-", 0) == 0;
    for (const auto& s : lib.sites)
        if (!glibc && (s.symbol == "malloc" || s.symbol == "mallocx")) other_malloc_ = true;
    return lib.links;
}

Attacher::Attacher(const Options& opt, Tracer& tracer, std::string cgroup_dir)
    : opt_(opt),
      tracer_(tracer),
      cgroup_dir_(std::move(cgroup_dir)),
      finder_([this](const std::string& open_path, const std::string& shown, bool* failed) {
          return tracer_.file_symbols(open_path, shown, failed);
      }) {}

void Attacher::attach_pids() {
    for (int pid : opt_.pids) {
        std::string done = attach_pid(pid);
        live_pids_.insert(pid);
        log(done);
    }
}

std::string Attacher::attach_pid(int pid) {
    std::string who = "pid " + std::to_string(pid);
    if (kill(pid, 0) != 0 && errno == ESRCH) throw MemtopError(kExitNoTarget, "trace " + who + ": no such process");
    if (process_exited(pid)) throw MemtopError(kExitNoTarget, "trace " + who + ": it exited");
    std::string err;
    auto maps = read_proc_maps(pid, &err);
    if (!maps) {
        if (process_exited(pid)) throw MemtopError(kExitNoTarget, "trace " + who + ": it exited");
        // The process is there; memtop may not look at it.
        bool denied =
            err.find(std::strerror(EACCES)) != std::string::npos || err.find(std::strerror(EPERM)) != std::string::npos;
        throw MemtopError(denied ? kExitPermission : kExitNoTarget, "trace " + who + ": " + err);
    }
    size_t probes = 0;
    std::vector<LibraryFile> files;
    try {
        size_t unread = 0;
        files = finder_.files_of(pid, *maps, &unread);
        // Files the worker failed on (each said why) may have been its allocator's.
        if (files.empty() && unread)
            throw MemtopError(kExitAttach,
                              "trace " + who + " (" + comm_of(pid) +
                                  "): none of its allocator files could be probed: " + std::to_string(unread) +
                                  (unread == 1 ? " file" : " files") + " it maps could not be read");
        if (files.empty()) throw MemtopError(kExitAttach, no_allocator("trace " + who + " (" + comm_of(pid) + ")"));
        // Tables before probes: the first stacks are whole too.
        if (auto* tables = tracer_.unwind_tables()) tables->load_process(pid);
        for (const auto& f : files) probes += attach_file(f, pid);
        // Every allocator file failed the placement worker (each said why).
        if (probes == 0)
            throw MemtopError(kExitAttach,
                              "trace " + who + " (" + comm_of(pid) + "): none of its allocator files could be probed");
    } catch (const MemtopError& e) {
        attach_failed(pid, who, e);
    }
    watch_target(pid);
    watch_python(pid, *maps);
    return "tracing " + who + " (" + comm_of(pid) + "): " + std::to_string(files.size()) + " libraries, " +
           std::to_string(probes) + " probes";
}

void Attacher::start_command() {
    std::string path = resolve_command(opt_.command[0]);
    // How CMD is linked, and its symbols: read by memtop-cfi (null for a
    // script, or a file it could not read).
    const FileSymbols* exe = tracer_.file_symbols(path, path);
    // --sample: CMD samples itself in-process when it can load the sampler.
    std::vector<std::string> env;
    if (opt_.sample && !opt_.kernel_sampling) {
        std::string lib = find_sampler_library();
        std::string why = lib.empty() ? "memtop's sampler library (libmemtop_sampler.so) is not installed"
                                      : preload_refused(path, exe);
        struct stat ls;
        if (why.empty() && stat(lib.c_str(), &ls) != 0) why = "cannot read " + lib;
        if (why.empty()) {
            preload_ = true;
            sampler_id_ = {static_cast<uint64_t>(ls.st_dev), ls.st_ino};
            env = preload_environment(lib, opt_.sample, opt_.python_objects);
        } else {
            log("sampling in the allocator's probes (every call traps): " + path + ": " + why);
        }
    } else if (opt_.python_sample && !opt_.kernel_sampling) {
        // --python-objects alone: Python's objects sampled in-process by the
        // Python-only sampler (no malloc of its own), the heap exact in the
        // probes. Without it, pymalloc's sites (watch_python says why).
        std::string lib = find_sampler_library(kPythonSamplerLibrary);
        std::string why = lib.empty() ? std::string("memtop's Python sampler library (") + kPythonSamplerLibrary +
                                            ") is not installed"
                                      : preload_refused(path, exe);
        struct stat ls;
        if (why.empty() && stat(lib.c_str(), &ls) != 0) why = "cannot read " + lib;
        if (why.empty()) {
            py_preload_ = true;
            sampler_id_ = {static_cast<uint64_t>(ls.st_dev), ls.st_ino};
            env = preload_environment(lib, opt_.python_sample, true);
        } else {
            py_refused_ = path + ": " + why;
        }
    }
    // The child runs memtop's image until exec, and memtop's libc and
    // libstdc++ are the ones a host program loads; a static CMD brings its
    // own allocator, which must then have symbols to probe.
    std::vector<LibraryFile> files;
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && finder_.defines_allocator(path, path, st.st_dev, st.st_ino)) {
        files.push_back({static_cast<uint64_t>(st.st_dev), st.st_ino, path, path});
    } else {
        // Not read (a script): its interpreter is dynamically linked.
        const bool is_static = exe && !exe->dynamic;
        const bool stripped = exe && !exe->has_functions;
        if (is_static && stripped)
            throw MemtopError(kExitAttach, "trace " + path +
                                               ": it is statically linked and stripped, so no symbol names its "
                                               "malloc; nothing to probe");
        if (is_static) throw MemtopError(kExitAttach, no_allocator("trace " + path + " (statically linked)"));
    }
    if (preload_) {
        // The sampler's probe points only: memtop's own files, which the
        // child runs until exec, make no allocation there.
        files = sampler_only(loaded_allocator_files(path, &env), -1);
    } else {
        std::string err;
        auto maps = read_proc_maps(getpid(), &err);
        if (!maps) throw MemtopError(kExitFailure, "read memtop's own maps: " + err);
        for (auto& f : finder_.files_of(getpid(), *maps)) files.push_back(std::move(f));
        // And the allocator files CMD links or preloads itself (-ljemalloc),
        // and the Python-only sampler's probe points.
        for (auto& f : loaded_allocator_files(path, py_preload_ ? &env : nullptr)) files.push_back(std::move(f));
    }

    // NDJSON on stdout stays parseable line by line: CMD prints to stderr.
    cmd_ = std::make_unique<TracedCommand>(path, opt_.command, opt_.json && opt_.output.empty(), opt_.follow,
                                           std::move(env));
    int pid = cmd_->pid();
    watch_target(pid);
    size_t probes = 0;
    auto& done = command_files_[pid];
    for (const auto& f : files)
        if (done.insert({f.dev, f.ino}).second) probes += attach_file(f, pid);
    log("tracing " + opt_.command[0] + " (pid " + std::to_string(pid) + "): " + std::to_string(done.size()) +
        " libraries, " + std::to_string(probes) + " probes" + (opt_.follow ? ", and the processes it starts" : "") +
        (preload_ ? ", sampled in-process by memtop's preloaded sampler" : ""));
    cmd_->release();
}

std::vector<LibraryFile> Attacher::loaded_allocator_files(const std::string& exe, const std::vector<std::string>* env,
                                                          const RunAs* as) {
    std::vector<LibraryFile> out;
    // Unwind tables for every file the program will map at start, before
    // it runs: the stacks of its first allocations (constructors included)
    // are whole. Libraries it opens later are tabled when a stack first
    // meets them.
    auto* tables = tracer_.unwind_tables();
    // Its loader, as memtop-cfi read it (the file is not parsed here).
    const FileSymbols* symbols = tracer_.file_symbols(exe, exe);
    // A script (a pyenv shim, a wrapper) is no code of its own: the kernel
    // runs its interpreter, whose files get their tables at that exec.
    const bool script = is_script(exe);
    for (const auto& file : program_files(exe, symbols ? symbols->interpreter : "", env, as)) {
        struct stat st;
        if (stat(file.c_str(), &st) != 0) continue;
        if (tables && !(script && file == exe)) tables->load_file({kernel_dev(st.st_dev), st.st_ino}, file, file);
        if (finder_.defines_allocator(file, file, st.st_dev, st.st_ino))
            out.push_back({static_cast<uint64_t>(st.st_dev), st.st_ino, file, file});
    }
    return out;
}

std::vector<LibraryFile> Attacher::sampler_only(std::vector<LibraryFile> files, int pid) {
    if (!preload_) return files;
    for (auto& f : files)
        if (std::pair{f.dev, f.ino} == sampler_id_) return {f};
    if (pid >= 0)
        log("pid " + std::to_string(pid) + " (" + comm_of(pid) +
            "): memtop's sampler is not loaded in it (static, setuid, or LD_PRELOAD changed); its allocations are "
            "sampled in the allocator's probes");
    return files;
}

bool Attacher::has_sampler(const std::vector<LibraryFile>& files) const {
    if (!preload_ && !py_preload_) return false;
    for (const auto& f : files)
        if (std::pair{f.dev, f.ino} == sampler_id_) return true;
    return false;
}

void Attacher::watch_target(int pid) {
    tracer_.watch_target(pid);
    // Exited before the entry was made: the exit that deletes it has run,
    // and the pid could come back as another process.
    if (process_exited(pid)) tracer_.watch_target(pid, false);
}

namespace {
// /proc/PID/environ or cmdline: its NUL-separated strings.
std::vector<std::string> proc_strings(int pid, const char* file) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + file, std::ios::binary);
    std::vector<std::string> out;
    for (std::string s; std::getline(in, s, '\0');) out.push_back(s);
    return out;
}
}  // namespace

void Attacher::watch_python(int pid, const std::vector<Mapping>& maps, bool sampler_loaded) {
    // --python-objects --sample: its objects are sampled in-process when the
    // preloaded sampler hooks CPython's allocator; else why not.
    std::string refused;
    const std::string* sampling = nullptr;
    if (opt_.python_objects && (opt_.sample || opt_.python_sample)) {
        sampling = &refused;
        if (opt_.kernel_sampling)
            refused = "--kernel-sampling";
        else if (!py_refused_.empty())
            refused = py_refused_;
        else if (!sampler_loaded)
            refused = cmd_ ? "memtop's sampler is not loaded in it"
                           : "memtop attached to it running (the sampler is preloaded into -- CMD only)";
        else
            refused = python_hook_refused(proc_strings(pid, "environ"), proc_strings(pid, "cmdline"));
    }
    std::string note;
    std::string said = tracer_.watch_python(pid, maps, sampling, &note);
    if (!said.empty() && (opt_.verbose || said.find("Python frames on") == std::string::npos)) log(said);
    if (!note.empty()) log(note);
}

void Attacher::command_fork(int pid) {
    // The child maps what its parent mapped at the fork.
    auto maps = read_proc_maps(pid, nullptr);
    if (!maps) return;  // gone already
    watch_target(pid);
    auto& done = command_files_[pid];
    size_t probes = 0;
    std::vector<LibraryFile> files;
    try {
        files = sampler_only(finder_.files_of(pid, *maps), pid);
    } catch (const MemtopError& e) {
        log("warning: pid " + std::to_string(pid) + " (" + comm_of(pid) + "): " + e.what());
    }
    // A forked CPython (multiprocessing) runs the same interpreter, with its
    // parent's allocator hooks.
    watch_python(pid, *maps, has_sampler(files));
    hold_python(pid);
    try {
        for (const auto& f : files)
            if (done.insert({f.dev, f.ino}).second) probes += attach_file(f, pid);
    } catch (const MemtopError& e) {
        log("warning: pid " + std::to_string(pid) + " (" + comm_of(pid) + "): " + e.what());
        return;
    }
    if (opt_.verbose)
        log("following pid " + std::to_string(pid) + " (" + comm_of(pid) + "): " + std::to_string(probes) + " probes");
}

void Attacher::command_exec(int pid) {
    std::string proc = "/proc/" + std::to_string(pid);
    char exe[4096];
    ssize_t n = readlink((proc + "/exe").c_str(), exe, sizeof exe - 1);
    if (n <= 0) return;  // gone already
    exe[n] = 0;
    std::ifstream in(proc + "/environ", std::ios::binary);
    std::vector<std::string> env;
    for (std::string var; std::getline(in, var, '\0');) env.push_back(var);
    size_t probes = 0;
    std::string names;
    bool sampler_loaded = false;
    try {
        // Its loader runs as the process's real user: a followed process
        // that dropped root's privileges chose that file.
        auto status = read_proc_status(pid, nullptr);
        if (!status || status->uid < 0 || status->gid < 0) return;  // gone already
        RunAs as{static_cast<unsigned>(status->uid), static_cast<unsigned>(status->gid)};
        auto files = sampler_only(loaded_allocator_files(exe, &env, status->uid == 0 ? nullptr : &as), pid);
        sampler_loaded = has_sampler(files);
        for (const auto& f : files) {
            if (!command_files_[pid].insert({f.dev, f.ino}).second) continue;
            probes += attach_file(f, pid);
            names += (names.empty() ? "" : ", ") + f.path;
        }
    } catch (const MemtopError& e) {
        // CMD runs on; what it allocates through this file is not counted.
        log(std::string("warning: ") + exe + " (pid " + std::to_string(pid) + "): " + e.what());
        return;
    }
    if (probes)
        log(std::string(exe) + " (pid " + std::to_string(pid) + ") loads " + names + ": " + std::to_string(probes) +
            " more probes");
    // Stopped at exec: the interpreter is mapped, it has not run yet.
    if (auto maps = read_proc_maps(pid, nullptr)) watch_python(pid, *maps, sampler_loaded);
    hold_python(pid);
}

void Attacher::hold_python(int pid) {
    // Python frames name code objects its finalization frees before it
    // exits: memtop reads them at Py_FinalizeEx (Session's at_signal).
    std::string why = tracer_.hold_python_at_finalize(pid);
    if (!why.empty())
        log("warning: pid " + std::to_string(pid) + ": its Python frames may go unnamed if it ends soon: " + why);
}

void Attacher::scan_host() {
    // --cgroup/--container: the processes in the cgroup now; probes go on
    // their files for every process (the kernel side filters by cgroup).
    std::vector<int> pids = cgroup_dir_.empty() ? list_pids() : cgroup_pids(cgroup_dir_);
    for (int pid : pids) {
        if (pid == getpid()) continue;
        if (!cgroup_dir_.empty() && scanned_pids_.insert(pid).second)
            if (auto* tables = tracer_.unwind_tables()) tables->load_process(pid);
        auto maps = read_proc_maps(pid, nullptr);
        if (!maps) continue;  // gone, or a kernel thread
        // A CPython running before memtop started (or one whose stacks
        // are all known already): its layout to the kernel, once per pid
        // seen (stack_seen catches the pids reused between scans).
        if (!python_scanned_.count(pid) && !tracer_.python_watched(pid)) watch_python(pid, *maps);
        for (const auto& f : finder_.files_of(pid, *maps)) {
            if (!host_files_.insert({f.dev, f.ino}).second) continue;
            try {
                attach_file(f, -1);
                if (opt_.verbose) log("attached to " + f.path + " (via pid " + std::to_string(pid) + ")");
            } catch (const MemtopError& e) {
                log(std::string("warning: ") + e.what());
            }
        }
    }
    // What was checked of pids gone since is forgotten (a reused pid is
    // checked again).
    python_scanned_ = std::set<int>(pids.begin(), pids.end());
    for (auto it = python_checked_.begin(); it != python_checked_.end();)
        it = python_scanned_.count(static_cast<int>(it->first)) ? std::next(it) : python_checked_.erase(it);
}

void Attacher::stack_seen(uint32_t pid, uint32_t epoch) {
    if (!python_checked_.insert({pid, epoch}).second || tracer_.python_watched(static_cast<int>(pid))) return;
    if (auto maps = read_proc_maps(static_cast<int>(pid), nullptr)) watch_python(static_cast<int>(pid), *maps);
}

bool Attacher::targets_gone() {
    if (opt_.pids.empty()) return false;
    for (auto it = live_pids_.begin(); it != live_pids_.end();) {
        if (!process_alive(*it)) {
            log("pid " + std::to_string(*it) + " exited");
            it = live_pids_.erase(it);
        } else {
            ++it;
        }
    }
    return live_pids_.empty();
}

}  // namespace memtop
