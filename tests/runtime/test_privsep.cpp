// Privilege separation: the files of traced processes (their ELF, DWARF)
// are parsed by a worker process of memtop (user/symbolize/sandbox.h) that
// holds no capabilities and runs under a seccomp filter. Checked on a real
// run, while memtop runs and has named a stack through the worker.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

// /proc/PID/status's value for `key`, "" if absent or the process is gone.
std::string status_field(int pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        size_t v = line.find_first_not_of(" \t", key.size() + 1);
        return v == std::string::npos ? std::string() : line.substr(v);
    }
    return "";
}

// The children of `parent` named `name`.
std::vector<int> children_named(int parent, const std::string& name) {
    std::vector<int> out;
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (struct dirent* e = readdir(d)) {
        const int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        if (status_field(pid, "PPid") == std::to_string(parent) && status_field(pid, "Name") == name)
            out.push_back(pid);
    }
    closedir(d);
    return out;
}

}  // namespace

TEST_CASE("While memtop runs, the process that parses files has no capabilities and a seccomp filter",
          "[bpf][privsep][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("jit_sites"));
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), {"--", prog_path("jit_sites"), "--wait"});
    Child memtop;
    start_memtop(memtop, argv, true);
    memtop.lines_on_stderr = true;  // with --json, CMD's stdout is memtop's stderr
    const int pid = wait_ready({&memtop}, memtop);
    size_t from_err = 0, from = 0;
    go({&memtop}, memtop, "done", &from_err);
    // A live report with a stack of pid holding a frame named from an ELF
    // file (not from the perf map): the worker has parsed a file. Which
    // stack depends on the kernel: the 5.10 build walks frame pointers only
    // and stops in the JIT code, but stdio's buffer is malloc'd from libc.
    auto live = wait_line(
        {&memtop}, memtop, false,
        [&](const std::string& l) {
            if (!starts_with(l, "{")) return false;
            json j = json::parse(l, nullptr, false);
            if (j.is_discarded() || !j.contains("stacks")) return false;
            for (const auto& st : j["stacks"]) {
                if (st.value("pid", 0) != pid) continue;
                for (const auto& f : st["frames"])
                    if (f.value("function", json()).is_string() && f.value("module", json()).is_string() &&
                        !starts_with(f["module"].get<std::string>(), "["))
                        return true;
            }
            return false;
        },
        kTimeout, &from);
    REQUIRE(live);
    const std::vector<int> workers = children_named(memtop.pid, "memtop-symbols");
    REQUIRE(workers.size() == 1);
    const int w = workers[0];
    INFO("worker " << w);
    CHECK(status_field(w, "CapEff") == "0000000000000000");
    CHECK(status_field(w, "CapPrm") == "0000000000000000");
    CHECK(status_field(w, "CapInh") == "0000000000000000");
    CHECK(status_field(w, "CapAmb") == "0000000000000000");
    CHECK(status_field(w, "NoNewPrivs") == "1");
    CHECK(status_field(w, "Seccomp") == "2");
    if (geteuid() == 0) {
        CHECK(status_field(w, "CapBnd") == "0000000000000000");
        CHECK(status_field(w, "Uid").rfind("65534\t65534\t65534", 0) == 0);
    }
    // memtop itself still holds its privileges (it loaded BPF programs).
    CHECK(status_field(memtop.pid, "CapEff") != "0000000000000000");
    memtop.close_stdin();
    Run r = stop_memtop({&memtop}, memtop, 0);
    INFO(r.diag);
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json* st = stack_with_bytes(*r.final_report, pid, JIT_SIZE);
    REQUIRE(st);
    CHECK((*st)["allocs"] == 1);
}

// The worker's time limit, on a real run: a test seam (docs/testing.md)
// makes the worker hang on deep_sites's library, as a parser that loops on a
// hostile file would, and shortens the limit from 60 s to 2 s. memtop ends
// that worker and starts another; the library's frames keep their module,
// unnamed, the report says why, every other file is still named, the
// counts are exact, and memtop exits with the program's status.
TEST_CASE("A library that hangs the parsing worker: its frames keep their module, the report says why",
          "[bpf][privsep][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    ::setenv("MEMTOP_TEST_WORKER_HANG_ON", "/libdeep_lib.so", 1);
    ::setenv("MEMTOP_TEST_WORKER_TIMEOUT_MS", "2000", 1);
    Run r = run_memtop_cmd({prog_path("deep_sites")});
    ::unsetenv("MEMTOP_TEST_WORKER_HANG_ON");
    ::unsetenv("MEMTOP_TEST_WORKER_TIMEOUT_MS");
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);  // memtop passes the exit status through; 0 = the program's self-checks passed
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, "deep_sites");
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    for (uint64_t size :
         {uint64_t(DEEP_CHAIN_SIZE), uint64_t(DEEP_NEW_SIZE), uint64_t(DEEP_LIB_SIZE), uint64_t(DEEP_THREAD_SIZE)}) {
        INFO("size " << size);
        const json* st = stack_with_bytes(rep, p.pid, size);
        REQUIRE(st);
        CHECK((*st)["allocs"] == 1);
    }
    // The library's frames: the module known, nothing in it named.
    const json* vialib = stack_with_bytes(rep, p.pid, DEEP_LIB_SIZE);
    const json& f0 = (*vialib)["frames"].at(0);
    REQUIRE(f0["module"].is_string());
    const std::string lib = f0["module"].get<std::string>();
    CHECK(basename_of(lib) == "libdeep_lib.so");
    for (const auto& f : (*vialib)["frames"]) {
        if (f["module"] != lib) continue;
        CHECK(f["function"].is_null());
        CHECK(f["line"].is_null());
    }
    // The program's own frames, and libc's, named by the next worker.
    CHECK(fn_is((*stack_with_bytes(rep, p.pid, DEEP_CHAIN_SIZE))["frames"][0], "deep_level3"));
    CHECK(fn_is((*stack_with_bytes(rep, p.pid, DEEP_THREAD_SIZE))["frames"][0], "deep_thread_site"));
    if (kernel_has_unwinder()) {
        const json& f = (*vialib)["frames"];
        REQUIRE(f.size() >= 3);
        CHECK(fn_is(f[2], "deep_via_lib"));
    }
    INFO("symbol_files: " << (rep.contains("symbol_files") ? rep["symbol_files"].dump() : "absent"));
    bool said = false;
    for (const auto& n : rep["symbol_files"]) {
        if (n.value("file", std::string()) != lib) continue;
        said = true;
        CHECK(n["problem"] == "not read: the symbolization worker did not answer within 2 s while reading it");
    }
    CHECK(said);
}

// The unwind tables' builder (libdw's CFI interpreter on every executable
// file a target maps) runs in a worker of its own, memtop-cfi, confined as
// the symbolization worker is. It is started for the tables of CMD's files,
// before CMD runs, and stays for the files CMD maps later.
TEST_CASE("While memtop runs a -- CMD with unwind tables, the process that builds them has no capabilities",
          "[bpf][privsep][cmd][unwind]") {
    RT_REQUIRE_ENV();
    if (!kernel_has_unwinder()) {
        WARN("kernel before 5.17: no unwind tables are built");
        return;
    }
    REQUIRE(have_prog("jit_sites"));
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), {"--", prog_path("jit_sites"), "--wait"});
    Child memtop;
    start_memtop(memtop, argv, true);
    memtop.lines_on_stderr = true;  // with --json, CMD's stdout is memtop's stderr
    const int pid = wait_ready({&memtop}, memtop);
    const std::vector<int> workers = children_named(memtop.pid, "memtop-cfi");
    REQUIRE(workers.size() == 1);
    const int w = workers[0];
    INFO("worker " << w);
    CHECK(status_field(w, "CapEff") == "0000000000000000");
    CHECK(status_field(w, "CapPrm") == "0000000000000000");
    CHECK(status_field(w, "CapInh") == "0000000000000000");
    CHECK(status_field(w, "CapAmb") == "0000000000000000");
    CHECK(status_field(w, "NoNewPrivs") == "1");
    CHECK(status_field(w, "Seccomp") == "2");
    if (geteuid() == 0) {
        CHECK(status_field(w, "CapBnd") == "0000000000000000");
        CHECK(status_field(w, "Uid").rfind("65534\t65534\t65534", 0) == 0);
    }
    CHECK(status_field(memtop.pid, "CapEff") != "0000000000000000");
    size_t from_err = 0;
    go({&memtop}, memtop, "done", &from_err);
    memtop.close_stdin();
    Run r = stop_memtop({&memtop}, memtop, 0);
    INFO(r.diag);
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json* st = stack_with_bytes(*r.final_report, pid, JIT_SIZE);
    REQUIRE(st);
    CHECK((*st)["allocs"] == 1);
    // Its tables were built there, and used.
    CHECK((*r.final_report)["unwind"]["tables"]["files"].get<int>() >= 3);
}

namespace {

// deep_sites under memtop, with a test seam (docs/testing.md) that makes the
// unwind-table worker fail on its library as it would on a hostile file:
// that file gets no table (its frames are walked by frame pointers, which
// it omits), stderr says which and why, and nothing else is lost: every
// count exact, the program's and libc's tables built by a new worker (whole
// stacks that do not pass through the library), every frame still named.
void check_cfi_worker_failure(const std::string& seam, const std::string& reason) {
    RT_REQUIRE_ENV();
    if (!kernel_has_unwinder()) {
        WARN("kernel before 5.17: no unwind tables are built");
        return;
    }
    REQUIRE(have_prog("deep_sites"));
    ::setenv(seam.c_str(), "/libdeep_lib.so", 1);
    ::setenv("MEMTOP_TEST_WORKER_TIMEOUT_MS", "2000", 1);
    Run r = run_memtop_cmd({prog_path("deep_sites")});
    ::unsetenv(seam.c_str());
    ::unsetenv("MEMTOP_TEST_WORKER_TIMEOUT_MS");
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);  // the program's self-checks passed, its status passed through
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, "deep_sites");
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    for (uint64_t size :
         {uint64_t(DEEP_CHAIN_SIZE), uint64_t(DEEP_NEW_SIZE), uint64_t(DEEP_LIB_SIZE), uint64_t(DEEP_THREAD_SIZE)}) {
        INFO("size " << size);
        const json* st = stack_with_bytes(rep, p.pid, size);
        REQUIRE(st);
        CHECK((*st)["allocs"] == 1);
    }
    // The library named by stderr, once, with the reason.
    const json* vialib = stack_with_bytes(rep, p.pid, DEEP_LIB_SIZE);
    const std::string lib = (*vialib)["frames"].at(0)["module"].get<std::string>();
    REQUIRE(basename_of(lib) == "libdeep_lib.so");
    const std::string said =
        "memtop: unwind table for " + lib + ": " + reason + "; its frames are walked by frame pointers only";
    CHECK(std::count(r.err_lines.begin(), r.err_lines.end(), said) == 1);
    CHECK(rep["unwind"]["tables"]["failed"] == 1);
    CHECK(rep["unwind"]["tables"]["files"].get<int>() >= 3);  // deep_sites, libc, ld.so (and libstdc++)
    // Named still (the symbolization worker is another process).
    CHECK(fn_is((*vialib)["frames"][0], "deep_lib_inner"));
    // Stacks that do not pass through the library: whole, as ever.
    for (auto [size, fn] : {std::pair{DEEP_CHAIN_SIZE, "deep_level3"}, {DEEP_THREAD_SIZE, "deep_thread_site"}}) {
        const json& st = *stack_with_bytes(rep, p.pid, size);
        INFO("chain: " << chain_of(st));
        CHECK(fn_is(st["frames"][0], fn));
        CHECK(st["complete"] == true);
        if (size == DEEP_CHAIN_SIZE) CHECK(fn_is(st["frames"].back(), "_start"));
    }
}

}  // namespace

TEST_CASE("A library that crashes the unwind-table worker: stderr says so, every count exact",
          "[bpf][privsep][cmd][unwind]") {
    check_cfi_worker_failure("MEMTOP_TEST_CFI_WORKER_CRASH_ON",
                             "not read: the unwind-table worker was killed by signal 11 (Segmentation fault) while "
                             "reading it");
}

TEST_CASE("A library that hangs the unwind-table worker: ended after its time limit, every count exact",
          "[bpf][privsep][cmd][unwind]") {
    check_cfi_worker_failure("MEMTOP_TEST_CFI_WORKER_HANG_ON",
                             "not read: the unwind-table worker did not answer within 2 s while reading it");
}

namespace {

// The lines of `lines` that start with `prefix` and end with `suffix`.
std::vector<std::string> lines_like(const std::vector<std::string>& lines, const std::string& prefix,
                                    const std::string& suffix) {
    std::vector<std::string> out;
    for (const auto& l : lines)
        if (l.rfind(prefix, 0) == 0 && l.size() >= prefix.size() + suffix.size() &&
            l.compare(l.size() - suffix.size(), suffix.size(), suffix) == 0)
            out.push_back(l);
    return out;
}

const char* const kCrashed =
    "not read: the placement worker (memtop-cfi) was killed by signal 11 (Segmentation fault) while reading it";

// A test seam for the time of one memtop run (read when memtop starts).
struct SeamEnv {
    SeamEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
    ~SeamEnv() { ::unsetenv(name_); }
    const char* name_;
};

}  // namespace

TEST_CASE("A libc that crashes the placement worker: -p on a program with no other allocator says so and exits 6",
          "[bpf][privsep][attach]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("c_sites_nofp"));
    Child prog;
    const int pid = start_prog(prog, {prog_path("c_sites_nofp"), "--wait"});
    Run r;
    {
        SeamEnv seam("MEMTOP_TEST_PLACEMENT_CRASH_ON", "/libc.so.6");
        Child memtop;
        start_memtop(memtop, memtop_attach_args({pid}));
        r = stop_memtop({&prog, &memtop}, memtop, 0);
    }
    INFO(r.diag);
    CHECK(r.exit_code == 6);  // docs/usage.md: no allocator could be probed
    // One line for libc, with the reason; then the attach error.
    const auto said = lines_like(r.err_lines, "memtop: probes for ",
                                 std::string("/libc.so.6: ") + kCrashed + "; its allocations are not traced");
    CHECK(said.size() == 1);
    CHECK(lines_like(r.err_lines, "memtop: trace pid " + std::to_string(pid),
                     "none of its allocator files could be probed")
              .size() == 1);
    go({&prog}, prog);  // untraced, it still runs
    CHECK(end_prog({&prog}, prog) == 0);
}

TEST_CASE("A libc that crashes the placement worker: the program's own allocator (jemalloc) is traced, exactly",
          "[bpf][privsep][attach][jemalloc][host]") {
    RT_REQUIRE_ENV();
    const std::string jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    if (access(jemalloc.c_str(), R_OK) != 0) {
        if (ci_mode()) FAIL(jemalloc << " is missing (tools/deps.txt installs it)");
        WARN("skipped: " << jemalloc << " is missing");
        return;
    }
    REQUIRE(have_prog("c_sites_nofp"));
    Attached a;
    {
        SeamEnv seam("MEMTOP_TEST_PLACEMENT_CRASH_ON", "/libc.so.6");
        a = run_attached({{"/usr/bin/env", "LD_PRELOAD=" + jemalloc, prog_path("c_sites_nofp"), "--wait"}});
    }
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    const auto said = lines_like(a.run.err_lines, "memtop: probes for ",
                                 std::string("/libc.so.6: ") + kCrashed + "; its allocations are not traced");
    CHECK(said.size() == 1);
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    const int pid = a.pids.at(0);
    ProcStats p = proc_stats(rep, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, pid));
    // Attached before any allocation of the sites, all through jemalloc's
    // malloc family, which the worker planned: exact. All but pvalloc,
    // which jemalloc lacks: glibc's runs, in the libc left unprobed, and
    // is exactly what is lost.
    CHECK(p.heap_bytes == C_TOTAL_BYTES - C_PVALLOC_SIZE);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL - 1);
    CHECK(p.frees_total == C_FREES_TOTAL);
    CHECK(stack_with_bytes(rep, pid, C_PVALLOC_SIZE) == nullptr);
    const json* st = stack_with_bytes(rep, pid, C_MEMALIGN_SIZE);
    REQUIRE(st);
    CHECK((*st)["allocs"] == 1);
}

TEST_CASE("A libc that crashes the placement worker: said once for a -f -- CMD that forks and execs, its status kept",
          "[bpf][privsep][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("forker_nofp"));
    for (const char* mode : {"", "--exec"}) {
        DYNAMIC_SECTION("forker " << mode) {
            std::vector<std::string> cmd = {prog_path("forker_nofp")};
            if (*mode) cmd.push_back(mode);
            Run r;
            {
                SeamEnv seam("MEMTOP_TEST_PLACEMENT_CRASH_ON", "/libc.so.6");
                r = run_memtop_cmd(cmd, {"-f"});  // each fork and exec attached
            }
            INFO(r.diag);
            REQUIRE_FALSE(r.timed_out);
            CHECK(r.exit_code == 0);  // CMD's own
            // memtop's libc at the start; the child's and the exec'd
            // program's libc is the same file, not asked again.
            CHECK(lines_like(r.err_lines, "memtop: probes for ",
                             std::string("/libc.so.6: ") + kCrashed + "; its allocations are not traced")
                      .size() == 1);
        }
    }
}

// The question asked of every file a target maps before anything is placed
// (which of them define an allocator: memtop-cfi's request 'S'), failed on
// one file: that file only is not probed, said once.
const char* const kSymbolsNotRead = "; if it defines an allocator, its allocations are not traced";

TEST_CASE("A program file that crashes the symbols worker: said once, every count exact", "[bpf][privsep][attach]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("c_sites_nofp"));
    Attached a;
    {
        // The program's own file defines no allocator: libc's probes count
        // everything, and the program's frames are still named (the
        // symbolization worker reads it).
        SeamEnv seam("MEMTOP_TEST_SYMBOLS_CRASH_ON", "/c_sites_nofp");
        a = run_attached({{prog_path("c_sites_nofp"), "--wait"}});
    }
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    CHECK(
        lines_like(a.run.err_lines, "memtop: symbols of ", std::string("/c_sites_nofp: ") + kCrashed + kSymbolsNotRead)
            .size() == 1);
    CHECK(lines_like(a.run.err_lines, "memtop: ", kSymbolsNotRead).size() == 1);  // no other file
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    const int pid = a.pids.at(0);
    ProcStats p = proc_stats(rep, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, pid));
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
    CHECK(p.frees_total == C_FREES_TOTAL);
    const json* st = stack_with_bytes(rep, pid, C_PVALLOC_SIZE);
    REQUIRE(st);
    CHECK((*st)["allocs"] == 1);
}

TEST_CASE("A libc that crashes the symbols worker: -p on a program with no other allocator says so and exits 6",
          "[bpf][privsep][attach]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("c_sites_nofp"));
    Child prog;
    const int pid = start_prog(prog, {prog_path("c_sites_nofp"), "--wait"});
    Run r;
    {
        SeamEnv seam("MEMTOP_TEST_SYMBOLS_CRASH_ON", "/libc.so.6");
        Child memtop;
        start_memtop(memtop, memtop_attach_args({pid}));
        r = stop_memtop({&prog, &memtop}, memtop, 0);
    }
    INFO(r.diag);
    CHECK(r.exit_code == 6);
    CHECK(lines_like(r.err_lines, "memtop: symbols of ", std::string("/libc.so.6: ") + kCrashed + kSymbolsNotRead)
              .size() == 1);
    // Not "makes no malloc calls": the file it could not read may be its allocator's.
    CHECK(lines_like(r.err_lines, "memtop: trace pid " + std::to_string(pid),
                     "none of its allocator files could be probed: 1 file it maps could not be read")
              .size() == 1);
    go({&prog}, prog);
    CHECK(end_prog({&prog}, prog) == 0);
}

TEST_CASE("A libc that crashes the symbols worker: the program's own allocator (jemalloc) is traced, exactly",
          "[bpf][privsep][attach][jemalloc][host]") {
    RT_REQUIRE_ENV();
    const std::string jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    if (access(jemalloc.c_str(), R_OK) != 0) {
        if (ci_mode()) FAIL(jemalloc << " is missing (tools/deps.txt installs it)");
        WARN("skipped: " << jemalloc << " is missing");
        return;
    }
    REQUIRE(have_prog("c_sites_nofp"));
    Attached a;
    {
        SeamEnv seam("MEMTOP_TEST_SYMBOLS_CRASH_ON", "/libc.so.6");
        a = run_attached({{"/usr/bin/env", "LD_PRELOAD=" + jemalloc, prog_path("c_sites_nofp"), "--wait"}});
    }
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    CHECK(lines_like(a.run.err_lines, "memtop: symbols of ", std::string("/libc.so.6: ") + kCrashed + kSymbolsNotRead)
              .size() == 1);
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    const int pid = a.pids.at(0);
    ProcStats p = proc_stats(rep, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, pid));
    // As when placement fails on libc: all but glibc's pvalloc, which
    // jemalloc lacks.
    CHECK(p.heap_bytes == C_TOTAL_BYTES - C_PVALLOC_SIZE);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL - 1);
    CHECK(p.frees_total == C_FREES_TOTAL);
    CHECK(stack_with_bytes(rep, pid, C_PVALLOC_SIZE) == nullptr);
}

TEST_CASE("A libc that crashes the symbols worker: a -f -- CMD that forks and execs runs on, said once",
          "[bpf][privsep][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("forker_nofp"));
    Run r;
    {
        SeamEnv seam("MEMTOP_TEST_SYMBOLS_CRASH_ON", "/libc.so.6");
        r = run_memtop_cmd({prog_path("forker_nofp"), "--exec"}, {"-f"});
    }
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);  // CMD's own
    // memtop's own libc at the start; CMD's, its child's and the exec'd
    // program's are the same file, not asked again.
    CHECK(lines_like(r.err_lines, "memtop: symbols of ", std::string("/libc.so.6: ") + kCrashed + kSymbolsNotRead)
              .size() == 1);
}
