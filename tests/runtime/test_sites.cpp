// Per-call-site accounting: c_sites / cpp_sites (fp, nofp, static) under
// `memtop -- CMD` and under `memtop -p PID` (attach protocol, see common.h).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>

#include <cstdlib>

#include <catch2/catch.hpp>

#include "api_sites.h"
#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

struct Variant {
    std::string target;  // c_sites_fp, ...
    std::string src;     // c_sites.c / cpp_sites.cpp
    bool fp;             // full frame-pointer chains and file:line expected
    // Runs the program through this command (e.g. env LD_PRELOAD=lib): CMD
    // execs the program, whose allocator memtop must find then.
    std::vector<std::string> wrap = {};
};

std::vector<std::string> command_of(const Variant& v, const std::vector<std::string>& args = {}) {
    std::vector<std::string> cmd = v.wrap;
    cmd.push_back(prog_path(v.target));
    cmd.insert(cmd.end(), args.begin(), args.end());
    return cmd;
}

template <class Sites>
void check_sites(const json& rep, int pid, const Sites& sites, const Variant& v) {
    for (const expect::Site& site : sites) {
        INFO("site " << site.function << " in " << v.target);
        Sum s = sum_frame0(rep, pid, site.function);
        CHECK(s.bytes == site.bytes);
        CHECK(s.allocs == site.allocs);
        if (site.totals_equal) {
            CHECK(s.alloc_bytes_total == site.bytes);
            CHECK(s.allocs_total == site.allocs);
        }
        if (site.bytes == 0) CHECK(s.stacks == 0);  // only stacks with outstanding bytes are listed
        if (!v.fp || site.bytes == 0) continue;
        const int want_line = marker_line(v.src, site.function);
        REQUIRE(want_line > 0);
        for (const json* st : stacks_frame0(rep, pid, site.function)) {
            const json& f = (*st)["frames"];
            INFO("chain: " << chain_of(*st));
            // the whole chain of test functions down to main
            REQUIRE(f.size() >= 3);
            CHECK(fn_is(f[1], "run_sites"));
            CHECK(fn_is(f[2], "main"));
            // symbolization of frames[0]
            const json& f0 = f[0];
            CHECK(f0.value("address", std::string()).rfind("0x", 0) == 0);
            REQUIRE(f0.contains("file"));
            REQUIRE(f0["file"].is_string());
            CHECK(basename_of(f0["file"].get<std::string>()) == v.src);
            REQUIRE(f0.contains("line"));
            REQUIRE(f0["line"].is_number_integer());
            CHECK(f0["line"].get<int>() == want_line);
            REQUIRE(f0.contains("module"));
            REQUIRE(f0["module"].is_string());
            CHECK(basename_of(f0["module"].get<std::string>()) == v.target);
        }
    }
}

// vector<int>::reserve: operator new is called from libstdc++ template code
// (out of line at -O0, inlined at -O2), so match the stack by any frame.
void check_vector(const json& rep, int pid, const Variant& v) {
    INFO("vector_site in " << v.target);
    Sum s = sum_any_frame(rep, pid, "vector_site");
    CHECK(s.bytes == CPP_VEC_BYTES);
    CHECK(s.allocs == 1);
    CHECK(s.allocs_total == 1);
    CHECK(s.alloc_bytes_total == CPP_VEC_BYTES);
    if (!v.fp) return;
    for (const json* st : stacks_any_frame(rep, pid, "vector_site")) {
        const json& f = (*st)["frames"];
        INFO("chain: " << chain_of(*st));
        size_t i = 0;
        while (i < f.size() && !fn_is(f[i], "vector_site")) i++;
        REQUIRE(i + 2 < f.size());
        CHECK(fn_is(f[i + 1], "run_sites"));
        CHECK(fn_is(f[i + 2], "main"));
    }
}

struct Baseline {
    long long heap = 0, peak = 0, allocs_total = 0, frees_total = 0;
};

// What the C/C++ runtime allocates by itself before main (e.g. libstdc++'s
// emergency exception pool, static glibc's search paths): the same binary run
// with --baseline returns from main immediately.
Baseline measure_baseline(const Variant& v) {
    Run r = run_memtop_cmd(command_of(v, {"--baseline"}));
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    ProcStats p = proc_by_comm(*r.final_report, v.target);
    Baseline b;
    if (p.found) {  // a process without any allocation may not be listed
        b.heap = p.heap_bytes;
        b.peak = p.heap_peak_bytes;
        b.allocs_total = p.allocs_total;
        b.frees_total = p.frees_total;
    }
    return b;
}

// A test seam of memtop's environment (docs/testing.md), set for the
// memtops a test case starts in its scope.
struct TestSeam {
    const char* name;
    TestSeam(const char* n, const char* value) : name(n) { ::setenv(name, value, 1); }
    ~TestSeam() { ::unsetenv(name); }
    TestSeam(const TestSeam&) = delete;
    TestSeam& operator=(const TestSeam&) = delete;
};

void c_sites_cmd(const Variant& v, bool use_baseline, const std::vector<std::string>& extra = {}) {
    RT_REQUIRE_ENV();
    if (!have_prog(v.target)) return;
    Baseline b;
    if (use_baseline) b = measure_baseline(v);

    Run r = run_memtop_cmd(command_of(v), extra);
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);  // memtop passes the exit status through; 0 = self-checks passed
    REQUIRE(r.final_report);
    CHECK(r.final_report->value("final", false));
    // Under a shell (-f) the program may end, and be listed, before CMD.
    const json* ended = v.wrap.empty() ? &*r.final_report : ended_report(r, v.target);
    REQUIRE(ended);
    const json& rep = *ended;
    check_report_shape(rep);
    ProcStats p = proc_by_comm(rep, v.target);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));

    check_sites(rep, p.pid, expect::c_sites, v);

    CHECK(p.heap_bytes == b.heap + C_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == std::max(b.peak, b.heap + C_PEAK_BYTES));
    CHECK(p.allocs_total == b.allocs_total + C_ALLOCS_TOTAL);
    CHECK(p.frees_total == b.frees_total + C_FREES_TOTAL);
    Sum all = sum_all(rep, p.pid);
    CHECK(all.bytes == p.heap_bytes);  // -T 1000: every stack is listed
    if (!use_baseline) {
        // nothing but the sites: no stray stacks
        CHECK(all.bytes == C_TOTAL_BYTES);
        CHECK(all.allocs == C_TOTAL_ALLOCS);
    }
}

// throws: the program's failing operator new throws bad_alloc (it aborts
// under some allocators: then it is not run, and nothing is thrown).
void cpp_sites_cmd(const Variant& v, const std::vector<std::string>& extra = {}, bool throws = true) {
    RT_REQUIRE_ENV();
    if (!have_prog(v.target)) return;
    Baseline b = measure_baseline(v);

    Run r = run_memtop_cmd(throws ? command_of(v) : command_of(v, {"--no-throw"}), extra);
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    // 0 = self-checks passed.  134 (SIGABRT) typically means the failing
    // `new` could not unwind: a uretprobe on operator new breaks C++
    // exception unwinding through it.
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    check_report_shape(rep);
    ProcStats p = proc_by_comm(rep, v.target);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));

    check_sites(rep, p.pid, expect::cpp_sites, v);
    check_vector(rep, p.pid, v);

    CHECK(p.heap_bytes == b.heap + CPP_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == std::max(b.peak, b.heap + CPP_PEAK_BYTES));
    const long long eh = throws ? CPP_EH_ALLOCS : 0;
    CHECK(p.allocs_total == b.allocs_total + CPP_ALLOCS_TOTAL + eh);
    CHECK(p.frees_total == b.frees_total + CPP_FREES_TOTAL + eh);
    Sum all = sum_all(rep, p.pid);
    CHECK(all.bytes == p.heap_bytes);
}

const Variant c_fp{"c_sites_fp", "c_sites.c", true};
const Variant c_nofp{"c_sites_nofp", "c_sites.c", false};
const Variant c_static{"c_sites_static", "c_sites.c", true};
const Variant cpp_fp{"cpp_sites_fp", "cpp_sites.cpp", true};
const Variant cpp_nofp{"cpp_sites_nofp", "cpp_sites.cpp", false};

// The allocators Debian ships besides glibc's. Their operator new does not
// call malloc (memtop takes its result at its returns) and throws bad_alloc
// from inside.
const char* const kJemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
const char* const kTcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
const char* const kMimalloc = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";

// `env LD_PRELOAD=lib prog`: memtop starts env, which execs prog with lib.
std::optional<Variant> preloaded(Variant v, const char* lib) {
    if (access(lib, R_OK) != 0) {
        if (ci_mode()) FAIL(lib << " is missing (tools/deps.txt installs it)");
        WARN("skipped: " << lib << " is missing");
        return std::nullopt;
    }
    v.wrap = {"/usr/bin/env", std::string("LD_PRELOAD=") + lib};
    return v;
}

}  // namespace

TEST_CASE("c_sites_fp under memtop -- CMD: exact per-site numbers, chains, file:line", "[bpf][sites][cmd]") {
    c_sites_cmd(c_fp, false);
}

// `memtop -- WRAPPER` where the wrapper is a script (a pyenv shim, a
// launcher) that execs the program: the program's sites are exact, and
// memtop says nothing of the script having no unwind table (it is no code:
// the kernel runs its interpreter).
TEST_CASE("c_sites_fp through a #! wrapper under memtop -- CMD: exact sites, no word on the script",
          "[bpf][sites][cmd]") {
    RT_REQUIRE_ENV();
    if (!have_prog(c_fp.target)) return;
    char dir[] = "/tmp/memtop-script-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string script = std::string(dir) + "/wrapper";
    {
        std::ofstream out(script);
        out << "#!/bin/sh\nexec \"" << prog_path(c_fp.target) << "\"\n";
    }
    REQUIRE(chmod(script.c_str(), 0755) == 0);
    Run r = run_memtop_cmd({script});
    unlink(script.c_str());
    rmdir(dir);
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    ProcStats p = proc_by_comm(*r.final_report, c_fp.target);
    REQUIRE(p.found);
    check_sites(*r.final_report, p.pid, expect::c_sites, c_fp);
    for (const auto& l : r.err_lines) CHECK(l.find("not an ELF file") == std::string::npos);
}

TEST_CASE("c_sites_nofp under memtop -- CMD: exact per-site numbers", "[bpf][sites][cmd]") {
    c_sites_cmd(c_nofp, false);
}

TEST_CASE("c_sites_static under memtop -- CMD: static glibc", "[bpf][sites][cmd][static]") {
    c_sites_cmd(c_static, true);
}

TEST_CASE("cpp_sites_fp under memtop -- CMD: operator new sites, chains, file:line", "[bpf][sites][cmd][cpp]") {
    cpp_sites_cmd(cpp_fp);
}

TEST_CASE("cpp_sites_nofp under memtop -- CMD: operator new sites", "[bpf][sites][cmd][cpp]") {
    cpp_sites_cmd(cpp_nofp);
}

TEST_CASE("memtop -p attaches to a running c_sites_fp: exact totals", "[bpf][sites][attach]") {
    RT_REQUIRE_ENV();
    if (!have_prog(c_fp.target)) return;
    Attached a = run_attached({{prog_path(c_fp.target), "--wait"}});
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    check_report_shape(rep);
    CHECK(rep.value("final", false));
    const int pid = a.pids.at(0);
    ProcStats p = proc_stats(rep, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, pid));
    check_sites(rep, pid, expect::c_sites, c_fp);
    // attached before any allocation of the program: everything is exact
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == C_PEAK_BYTES);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
    CHECK(p.frees_total == C_FREES_TOTAL);
    Sum all = sum_all(rep, pid);
    CHECK(all.bytes == C_TOTAL_BYTES);
    CHECK(all.allocs == C_TOTAL_ALLOCS);
}

TEST_CASE("memtop -p attaches to a running cpp_sites_nofp: exact totals", "[bpf][sites][attach][cpp]") {
    RT_REQUIRE_ENV();
    if (!have_prog(cpp_nofp.target)) return;
    Attached a = run_attached({{prog_path(cpp_nofp.target), "--wait"}});
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    check_report_shape(rep);
    const int pid = a.pids.at(0);
    ProcStats p = proc_stats(rep, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, pid));
    check_sites(rep, pid, expect::cpp_sites, cpp_nofp);
    check_vector(rep, pid, cpp_nofp);
    // libstdc++'s startup allocation happened before the attach: not seen
    CHECK(p.heap_bytes == CPP_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == CPP_PEAK_BYTES);
    CHECK(p.allocs_total == CPP_ALLOCS_TOTAL + CPP_EH_ALLOCS);
    CHECK(p.frees_total == CPP_FREES_TOTAL + CPP_EH_ALLOCS);
    Sum all = sum_all(rep, pid);
    CHECK(all.bytes == CPP_TOTAL_BYTES);
    CHECK(all.allocs == CPP_TOTAL_ALLOCS);
}

TEST_CASE("memtop -p PID,PID traces two processes separately; SIGTERM stops it", "[bpf][sites][attach][host]") {
    RT_REQUIRE_ENV();
    if (!have_prog(c_nofp.target) || !have_prog(cpp_fp.target)) return;
    AttachOptions opt;
    opt.stop_signal = SIGTERM;
    Attached a = run_attached({{prog_path(c_nofp.target), "--wait"}, {prog_path(cpp_fp.target), "--wait"}}, opt);
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    check_report_shape(rep);
    const int cpid = a.pids.at(0), cxxpid = a.pids.at(1);
    {
        ProcStats p = proc_stats(rep, cpid);
        INFO(describe_stacks(rep, cpid));
        REQUIRE(p.found);
        CHECK(p.comm == c_nofp.target);
        check_sites(rep, cpid, expect::c_sites, c_nofp);
        CHECK(p.heap_bytes == C_TOTAL_BYTES);
        CHECK(p.heap_peak_bytes == C_PEAK_BYTES);
        CHECK(p.allocs_total == C_ALLOCS_TOTAL);
        CHECK(p.frees_total == C_FREES_TOTAL);
    }
    {
        ProcStats p = proc_stats(rep, cxxpid);
        INFO(describe_stacks(rep, cxxpid));
        REQUIRE(p.found);
        CHECK(p.comm == cpp_fp.target);
        check_sites(rep, cxxpid, expect::cpp_sites, cpp_fp);
        check_vector(rep, cxxpid, cpp_fp);
        CHECK(p.heap_bytes == CPP_TOTAL_BYTES);
        CHECK(p.heap_peak_bytes == CPP_PEAK_BYTES);
    }
}

TEST_CASE("memtop -p --duration stops by itself; interval reports precede the final one", "[bpf][attach][host]") {
    RT_REQUIRE_ENV();
    if (!have_prog(c_nofp.target)) return;
    AttachOptions opt;
    opt.duration_sec = 3;
    auto t0 = std::chrono::steady_clock::now();
    Attached a = run_attached({{prog_path(c_nofp.target), "--wait"}}, opt);
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    CHECK(secs <= 3 + 20);
    REQUIRE(a.run.final_report);
    check_report_shape(*a.run.final_report);
    // -d 1 for 3 s: at least one interval report, all before the final one
    REQUIRE(a.run.reports().size() >= 2);
    for (size_t i = 0; i + 1 < a.run.reports().size(); i++) {
        check_report_shape(a.run.reports()[i]);
        CHECK_FALSE(a.run.reports()[i].value("final", true));
    }
    CHECK(a.run.reports().back().value("final", false));
    ProcStats p = proc_stats(*a.run.final_report, a.pids.at(0));
    REQUIRE(p.found);
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
}

// The paths older kernels take, forced on this one: they must count exactly
// the same (issue 6: features a kernel lacks are fallen back from, not lost).
TEST_CASE("fallbacks count exactly: classic perf-event uprobes", "[bpf][sites][cmd][fallback]") {
    c_sites_cmd(c_nofp, false, {"--no-uprobe-multi"});
}

// uprobe_multi links with a return probe per allocation (Linux 6.6-6.12),
// where this kernel has uprobe sessions.
TEST_CASE("fallbacks count exactly: uprobe_multi without sessions", "[bpf][sites][cmd][fallback]") {
    c_sites_cmd(c_nofp, false, {"--no-uprobe-session"});
}

TEST_CASE("fallbacks count exactly: uprobe_multi without sessions, C++ sites", "[bpf][sites][cmd][cpp][fallback]") {
    cpp_sites_cmd(cpp_nofp, {"--no-uprobe-session"});
}

// One entry program per allocation call (the full build before Linux 6.6),
// where this kernel has alloc_entry and op_new_entry serve them by attach
// cookie; and those two through classic perf-event uprobes, whose cookies
// take another path in the kernel than those of uprobe_multi links.
TEST_CASE("fallbacks count exactly: one entry program per allocation call, and classic uprobes with cookies",
          "[bpf][sites][cmd][fallback]") {
    {
        TestSeam forced("MEMTOP_TEST_ENTRY_PROGRAMS", "1");
        c_sites_cmd(c_nofp, false);
        cpp_sites_cmd(cpp_nofp);
    }
    c_sites_cmd(c_fp, false, {"--no-uprobe-multi"});
    cpp_sites_cmd(cpp_fp, {"--no-uprobe-multi"});
}

TEST_CASE("fallbacks count exactly: the 5.10 BPF build with classic uprobes", "[bpf][sites][cmd][fallback]") {
    c_sites_cmd(c_fp, false, {"--compat-bpf", "--no-uprobe-multi"});
}

TEST_CASE("fallbacks count exactly: the 5.10 BPF build, C++ sites", "[bpf][sites][cmd][cpp][fallback]") {
    cpp_sites_cmd(cpp_nofp, {"--compat-bpf"});
}

TEST_CASE("allocators: c_sites and cpp_sites exact under a preloaded jemalloc, tcmalloc, mimalloc (env execs them)",
          "[bpf][sites][cmd][allocators][host]") {
    for (const char* lib : {kJemalloc, kTcmalloc, kMimalloc}) {
        DYNAMIC_SECTION(lib) {
            auto c = preloaded(c_fp, lib);
            if (!c) return;
            // c_sites checks glibc's realloc(p, 0) (frees, returns NULL);
            // mimalloc returns a new empty block, as C allows.
            if (lib != kMimalloc) c_sites_cmd(*c, true);
            // Debian's mimalloc aborts where operator new should throw.
            bool throws = lib != kMimalloc;
            cpp_sites_cmd(*preloaded(cpp_fp, lib), {}, throws);
            cpp_sites_cmd(*preloaded(cpp_nofp, lib), {}, throws);
        }
    }
}

// tcmalloc's debug build puts freed blocks in a quarantine and, inside free,
// allocates the queue that holds them (MallocBlock::ProcessFreeQueue): a
// block of the allocator's own, made through its probed malloc, counted
// under the frames of the free that made it (docs/limits.md). The program's
// own sites stay exact; every other byte is under the allocator's frames.
TEST_CASE("allocators: under tcmalloc's debug build the sites are exact, its own blocks under its frames",
          "[bpf][sites][cmd][allocators][host]") {
    RT_REQUIRE_ENV();
    auto v = preloaded(c_fp, "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal_debug.so.4");
    if (!v) return;
    // The program's stacks, and those whose innermost frame is tcmalloc's code.
    struct Split {
        Sum all, own;
    };
    auto split = [&](const std::vector<std::string>& args) {
        Run r = run_memtop_cmd(command_of(*v, args));
        INFO(r.diag);
        REQUIRE(r.exit_code == 0);
        REQUIRE(r.final_report);
        const json& rep = *r.final_report;
        ProcStats p = proc_by_comm(rep, v->target);
        REQUIRE(p.found);
        INFO(describe_stacks(rep, p.pid));
        Split out;
        out.all = sum_all(rep, p.pid);
        CHECK(out.all.bytes == p.heap_bytes);
        for (const auto& st : rep["stacks"]) {
            if (st["pid"] != p.pid || st["frames"].empty()) continue;
            const json& f0 = st["frames"][0];
            if (!f0.value("module", json()).is_string() ||
                basename_of(f0["module"].get<std::string>()).rfind("libtcmalloc", 0) != 0)
                continue;
            out.own.bytes += st["bytes"].get<long long>();
            out.own.allocs += st["allocs"].get<long long>();
        }
        if (args.empty()) check_sites(rep, p.pid, expect::c_sites, *v);
        return out;
    };
    // Before main (--baseline): libstdc++'s exception pool; the allocator's own.
    const Split base = split({"--baseline"});
    const Split run = split({});
    // The quarantine's queue, made inside a free (the program's, or at exit):
    // the same blocks of the allocator's own either way.
    CHECK(run.own.bytes > 0);
    CHECK(run.own.bytes == base.own.bytes);
    CHECK(run.all.bytes - run.own.bytes == base.all.bytes - base.own.bytes + C_TOTAL_BYTES);
    CHECK(run.all.allocs - run.own.allocs == base.all.allocs - base.own.allocs + C_TOTAL_ALLOCS);
}

TEST_CASE("allocators: a program linked with jemalloc is traced through it", "[bpf][sites][cmd][allocators][host]") {
    cpp_sites_cmd({"cpp_sites_jemalloc", "cpp_sites.cpp", true});
}

TEST_CASE("allocators: a static program with jemalloc inside is traced through it",
          "[bpf][sites][cmd][allocators][static][host]") {
    // --no-throw: a static program's first throw has libgcc sort every FDE
    // of the executable into arrays it mallocs and frees (unwind-dw2-fde.c),
    // which the --baseline run never does; the sites are what is checked.
    cpp_sites_cmd({"cpp_sites_static_jemalloc", "cpp_sites.cpp", true}, {}, false);
}

TEST_CASE("allocators: memtop -p attaches to a running cpp_sites_fp under tcmalloc: exact sites",
          "[bpf][sites][attach][allocators][host]") {
    RT_REQUIRE_ENV();
    auto v = preloaded(cpp_fp, kTcmalloc);
    if (!v || !have_prog(v->target)) return;
    Attached a = run_attached({command_of(*v, {"--wait"})});
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    const int pid = a.pids.at(0);
    ProcStats p = proc_stats(rep, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, pid));
    check_sites(rep, pid, expect::cpp_sites, *v);
    check_vector(rep, pid, *v);
    // Attached before any allocation of the sites: everything is exact.
    CHECK(p.heap_bytes == CPP_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == CPP_PEAK_BYTES);
    CHECK(p.allocs_total == CPP_ALLOCS_TOTAL + CPP_EH_ALLOCS);
    CHECK(p.frees_total == CPP_FREES_TOTAL + CPP_EH_ALLOCS);
}

// An allocator's own API called by name (api_sites_X, linked with X): every
// site exact, outstanding and allocated in all (--sort allocated lists the
// stacks whose blocks were all freed too), and the process's totals are the
// sites' plus what the runtime allocated without them (--baseline): a
// malloc that the allocator routes to its own API counts once.
// mode: the program's argument that picks the table's sites (api_sites.cpp);
// memtop_args: memtop's options; wrap: what runs the program (Variant::wrap).
template <size_t N>
void api_sites_cmd(const std::string& target, const expect::ApiSite (&sites)[N], const std::string& mode = "",
                   const std::vector<std::string>& memtop_args = {}, const std::vector<std::string>& wrap = {}) {
    RT_REQUIRE_ENV();
    if (!have_prog(target)) {
        if (ci_mode()) FAIL(target << " was not built (tools/deps.txt installs its allocator)");
        return;
    }
    Variant v{target, "api_sites.cpp", true};
    Baseline b = measure_baseline(v);
    v.wrap = wrap;
    std::vector<std::string> args;
    if (!mode.empty()) args.push_back(mode);
    std::vector<std::string> options = {"--sort", "allocated"};
    options.insert(options.end(), memtop_args.begin(), memtop_args.end());
    Run r = run_memtop_cmd(command_of(v, args), options);
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    // (Not check_report_shape: it takes every listed stack to hold bytes,
    // as the default order lists them; --sort allocated lists freed ones.)
    // Under a shell (-f) the program may end, and be listed, before CMD.
    const json* ended = wrap.empty() ? &*r.final_report : ended_report(r, target);
    REQUIRE(ended);
    const json& rep = *ended;
    ProcStats p = proc_by_comm(rep, target);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    long long bytes = 0, allocs = 0, allocs_total = 0;
    for (const expect::ApiSite& site : sites) {
        INFO("site " << site.function);
        Sum s = sum_frame0(rep, p.pid, site.function);
        CHECK(s.bytes == site.bytes);
        CHECK(s.allocs == site.allocs);
        CHECK(s.alloc_bytes_total == site.alloc_bytes_total);
        CHECK(s.allocs_total == site.allocs_total);
        bytes += site.bytes;
        allocs += site.allocs;
        allocs_total += site.allocs_total;
    }
    CHECK(p.heap_bytes == b.heap + bytes);
    CHECK(p.allocs_total == b.allocs_total + allocs_total);
    CHECK(p.frees_total == b.frees_total + allocs_total - allocs);
    Sum all = sum_all(rep, p.pid);
    CHECK(all.bytes == p.heap_bytes);
}

TEST_CASE("allocators: jemalloc's own API (mallocx, rallocx, sdallocx, dallocx) by name: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_jemalloc", expect::api_jemalloc_sites);
}

TEST_CASE("allocators: tcmalloc's own API (tc_malloc, tc_new, tc_free_sized...) by name: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_tcmalloc", expect::api_tcmalloc_sites);
}

TEST_CASE("allocators: mimalloc's own API (mi_malloc, mi_zalloc, mi_new_n, mi_free_size...) by name: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_sites);
}

// mimalloc's heap API: each mi_heap_* call counted once at its caller, and
// mi_heap_destroy frees every block of its heap (also those plain calls
// made while the heap was the default), mi_heap_delete none.
TEST_CASE("allocators: mimalloc's heap API (mi_heap_malloc..., mi_heap_destroy, mi_heap_delete): exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_heap_sites, "--heap");
}

TEST_CASE("allocators: mimalloc's mi_strdup, mi_strndup, mi_realpath: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_string_sites, "--strings");
}

TEST_CASE("allocators: mimalloc's mi_expand resizes a block in place: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_expand_sites, "--expand");
}

TEST_CASE("allocators: a failed mi_reallocf frees the block, a failed mi_realloc keeps it: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_reallocf_fail_sites, "--reallocf-fail");
}

TEST_CASE("allocators: jemalloc's xallocx resizes a block in place: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_jemalloc", expect::api_jemalloc_expand_sites, "--expand");
}

// The programs of these calls are another BPF object's (bpf/mimalloc.h),
// loaded at the first attach to a file defining them, with a return program
// of their own where the kernel has no uprobe sessions.
TEST_CASE("allocators: mimalloc's heap API and strings without uprobe sessions or uprobe_multi: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_heap_sites, "--heap", {"--no-uprobe-session"});
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_string_sites, "--strings", {"--no-uprobe-multi"});
}

// Those programs split between two instances of their object, loaded on
// two threads at once (what an idle 2-core host does; forced here so that
// a busy host tests it too): both share memtop's maps.
TEST_CASE("allocators: mimalloc's heap API with its programs loaded by two objects at once: exact sites",
          "[bpf][sites][cmd][allocators][host]") {
    TestSeam forced("MEMTOP_TEST_LOAD_PARTS", "2");
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_heap_sites, "--heap");
}

// Where the mimalloc object cannot load (here: the compat build has none),
// its functions are said once not to be traced and the rest is traced.
TEST_CASE("allocators: without the mimalloc object (--compat-bpf) mi_strdup and mi_heap_* are said not traced",
          "[bpf][sites][cmd][allocators][host]") {
    RT_REQUIRE_ENV();
    if (!have_prog("api_sites_mimalloc")) {
        if (ci_mode()) FAIL("api_sites_mimalloc was not built (tools/deps.txt installs its allocator)");
        return;
    }
    Run r = run_memtop_cmd({prog_path("api_sites_mimalloc"), "--strings"}, {"--compat-bpf"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    ProcStats p = proc_by_comm(*r.final_report, "api_sites_mimalloc");
    REQUIRE(p.found);
    CHECK(p.allocs_total > 0);  // its mi_malloc and malloc calls
    int said = 0;
    for (const auto& l : r.err_lines)
        if (l.find(
                "more functions: the compat BPF build (Linux 5.12 and older) has no programs for them; not traced") !=
            std::string::npos)
            said++;
    CHECK(said == 1);
}

// sh (glibc only) is attached first; libmimalloc when sh's child execs the
// program: the mimalloc object loads then, mid-run.
TEST_CASE("allocators: mimalloc's heap API in a child started later (-f): its programs load mid-run, exact sites",
          "[bpf][sites][cmd][allocators][follow][host]") {
    api_sites_cmd("api_sites_mimalloc", expect::api_mimalloc_heap_sites, "--heap", {"-f"},
                  {"/bin/sh", "-c", "\"$0\" \"$@\"; exit $?"});
}

TEST_CASE("-f follows the processes CMD starts: a shell's child is traced exactly", "[bpf][sites][cmd][follow]") {
    // sh forks, the child execs c_sites_fp (sh waits for it, so it does not
    // exec in place): without -f only sh would be traced.
    Variant v = c_fp;
    v.wrap = {"/bin/sh", "-c", "\"$0\" \"$@\"; exit $?"};
    c_sites_cmd(v, false, {"-f"});
}

TEST_CASE("without -f a shell's child is not traced", "[bpf][sites][cmd][follow]") {
    RT_REQUIRE_ENV();
    Run r = run_memtop_cmd({"/bin/sh", "-c", "\"$0\"; exit $?", prog_path(c_fp.target)});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    for (const auto& p : (*r.final_report)["processes"]) CHECK(p.value("comm", std::string()) == "sh");
}

TEST_CASE("-f: a forked child gets its own exact numbers, the parent keeps its own", "[bpf][cmd][follow]") {
    RT_REQUIRE_ENV();
    if (!have_prog("forker_fp")) return;
    Run r = run_memtop_cmd({prog_path("forker_fp")}, {"-f"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    // Each process's final numbers, in the report that listed it ended: the
    // child may end, and be listed, in an interval report before its parent.
    std::map<int, std::pair<const json*, const json*>> ended;  // pid -> (report, process)
    for (const auto& rep : r.reports())
        for (const auto& p : rep["processes"])
            if (p.value("exited", false)) ended.try_emplace(p["pid"].get<int>(), &rep, &p);
    REQUIRE(ended.size() == 2);
    long long parent_bytes = -1, child_bytes = -1, child_allocs = -1;
    for (const auto& [pid, at] : ended) {
        const json& p = *at.second;
        if (sum_frame0(*at.first, pid, "child_site").bytes > 0) {
            child_bytes = p["heap_bytes"].get<long long>();
            child_allocs = p["allocs_total"].get<long long>();
        } else {
            parent_bytes = p["heap_bytes"].get<long long>();
        }
    }
    INFO(r.final_report->dump());
    CHECK(parent_bytes == FORK_PARENT_BYTES);
    CHECK(child_bytes == FORK_CHILD_BYTES);
    CHECK(child_allocs == FORK_CHILD_ALLOCS);
}

// The final report is the run's summary: a child that ended before it,
// listed then by an interval report, is in it again with the same numbers
// and its stacks, marked reported_before.
TEST_CASE("-f: the final report lists a child that ended before it, with its stacks", "[bpf][sites][cmd][follow]") {
    RT_REQUIRE_ENV();
    if (!have_prog(c_fp.target)) return;
    Child memtop;
    std::vector<std::string> argv = memtop_base_args();
    for (const char* a : {"-f", "--", "/bin/sh", "-c", "\"$0\"; read x; exit 0"}) argv.push_back(a);
    argv.push_back(prog_path(c_fp.target));
    start_memtop(memtop, argv, true);
    std::vector<Child*> all = {&memtop};
    wait_memtop_ready(all, memtop);
    auto ended_in = [](const json& r) -> const json* {
        auto ps = r.find("processes");
        if (ps == r.end()) return nullptr;
        for (const auto& p : *ps)
            if (p.value("comm", std::string()) == c_fp.target && p.value("exited", false)) return &p;
        return nullptr;
    };
    size_t seen = 0;
    std::string last = "no report";
    // sh waits on its stdin: every report until it reads EOF is an interval one.
    auto ended = report_until(
        all, memtop, seen, [&](const json& r) { return ended_in(r) != nullptr; }, &last, 30);
    INFO(last.substr(0, 2000));
    REQUIRE(ended);
    CHECK_FALSE(ended->value("final", false));
    const json child = *ended_in(*ended);
    CHECK_FALSE(child.contains("reported_before"));
    const int pid = child["pid"].get<int>();
    const Sum at_end = sum_all(*ended, pid);

    memtop.close_stdin();
    Run r = stop_memtop(all, memtop, 0);
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& fin = *r.final_report;
    const json* again = ended_in(fin);
    REQUIRE(again);
    CHECK((*again)["pid"] == pid);
    CHECK((*again)["reported_before"] == true);
    for (const char* k : {"heap_bytes", "heap_peak_bytes", "allocs_total", "frees_total"})
        CHECK((*again)[k] == child[k]);
    CHECK((*again)["heap_bytes"] == C_TOTAL_BYTES);
    // -T 1000: every stack it was shown with, each site with its bytes.
    const Sum in_final = sum_all(fin, pid);
    CHECK(in_final.bytes == at_end.bytes);
    CHECK(in_final.allocs == at_end.allocs);
    CHECK(in_final.bytes == C_TOTAL_BYTES);
    check_sites(fin, pid, expect::c_sites, c_fp);
    // sh is there too, once, as the last report's own.
    int shells = 0;
    for (const auto& p : fin["processes"])
        if (p.value("comm", std::string()) == "sh") {
            shells++;
            CHECK_FALSE(p.contains("reported_before"));
        }
    CHECK(shells == 1);
}

TEST_CASE("--sort temporary and allocated list stacks whose blocks were all freed", "[bpf][sites][cmd][sort]") {
    RT_REQUIRE_ENV();
    for (const char* order : {"temporary", "allocated", "allocations"}) {
        DYNAMIC_SECTION(order) {
            Run r = run_memtop_cmd({prog_path(c_fp.target)}, {"--sort", order});
            INFO(r.diag);
            REQUIRE(r.exit_code == 0);
            REQUIRE(r.final_report);
            const json& rep = *r.final_report;
            CHECK(rep["stack_order"] == order);
            ProcStats p = proc_by_comm(rep, c_fp.target);
            REQUIRE(p.found);
            // temp_malloc: 1000 x (malloc(64); free), each freed before the
            // next allocation: nothing outstanding, all of it temporary.
            const auto temp = stacks_frame0(rep, p.pid, "temp_malloc");
            REQUIRE(temp.size() == 1);
            const json& s = *temp[0];
            CHECK(s["bytes"] == 0);
            CHECK(s["allocs_total"] == C_TEMP_N);
            CHECK(s["alloc_bytes_total"] == C_TEMP_N * C_TEMP_SIZE);
            CHECK(s["temporary_allocs"] == C_TEMP_N);
            CHECK(s["temporary_bytes"] == C_TEMP_N * C_TEMP_SIZE);
            // By count, it is the top stack of the program.
            if (std::string(order) != "allocated") CHECK(fn_is(rep["stacks"][0]["frames"][0], "temp_malloc"));
            // Leaks are never temporary.
            for (const json* l : stacks_frame0(rep, p.pid, "leak_malloc")) CHECK((*l)["temporary_allocs"] == 0);
        }
    }
    // The default order lists only what is still outstanding.
    Run r = run_memtop_cmd({prog_path(c_fp.target)});
    REQUIRE(r.final_report);
    CHECK((*r.final_report)["stack_order"] == "outstanding");
    CHECK(stacks_frame0(*r.final_report, proc_by_comm(*r.final_report, c_fp.target).pid, "temp_malloc").empty());
}

TEST_CASE("--min-age: a leak counts once its blocks are that old, with its age histogram",
          "[bpf][sites][attach][age]") {
    RT_REQUIRE_ENV();
    Child prog, memtop;
    const int pid = start_prog(prog, {prog_path(c_fp.target), "--wait"});
    start_memtop(memtop,
                 {memtop_path(), "--json", "-d", "1", "-T", "1000", "--min-age", "1", "-p", std::to_string(pid)});
    wait_tracing({&memtop, &prog}, memtop, {pid});
    go({&memtop, &prog}, prog);
    const long long leak = C_LEAK_MALLOC_N * C_LEAK_MALLOC_SIZE;
    // Every report counts whole leak_malloc blocks, each once it is a
    // second old, and counts them all once a second has passed since the
    // last. (Made in one loop, they mostly age together; on a slow guest the
    // loop can straddle a report's cutoff, and that report counts some.)
    size_t seen = 0;
    std::string last;
    auto aged = report_until(
        {&memtop, &prog}, memtop, seen,
        [&](const json& rep) {
            long long b = sum_frame0(rep, pid, "leak_malloc").bytes;
            CHECK(b % C_LEAK_MALLOC_SIZE == 0);
            CHECK((b >= 0 && b <= leak));
            return b == leak;
        },
        &last, 10);
    INFO(last);
    REQUIRE(aged);
    const json& rep = *aged;
    CHECK(rep["min_age_seconds"] == 1.0);
    // The process's own totals are not filtered.
    CHECK(proc_stats(rep, pid).heap_bytes == C_TOTAL_BYTES);
    for (const json* s : stacks_frame0(rep, pid, "leak_malloc")) {
        REQUIRE(s->contains("ages"));
        long long bytes = 0, allocs = 0, young = (*s)["ages"][0]["bytes"].get<long long>();
        for (const auto& a : (*s)["ages"]) {
            bytes += a["bytes"].get<long long>();
            allocs += a["allocs"].get<long long>();
        }
        // The histogram holds every outstanding block of the stack; none
        // under a second old any more.
        CHECK(bytes == (*s)["bytes"].get<long long>());
        CHECK(allocs == (*s)["allocs"].get<long long>());
        CHECK(young == 0);
    }
    stop_memtop({&memtop, &prog}, memtop, SIGINT);
    end_prog({&prog}, prog);
}

TEST_CASE("--min-age longer than the run: no heap stack, totals unchanged", "[bpf][sites][cmd][age]") {
    RT_REQUIRE_ENV();
    Run r = run_memtop_cmd({prog_path(c_fp.target)}, {"--min-age", "3600"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    ProcStats p = proc_by_comm(*r.final_report, c_fp.target);
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(stacks_of(*r.final_report, p.pid).empty());
}
