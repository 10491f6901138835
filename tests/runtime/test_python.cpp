// Python frames: Debian 12's unmodified /usr/bin/python3.11 (no debug
// package) running tests/progs/python/*.py. Its heap stacks show the
// interpreter's frames as `function (file.py:line)` in place of
// _PyEval_EvalFrameDefault, with the native frames above and below kept, and
// --lines lists a Python file like memory_profiler. Tagged [host]: the VM's
// userland has no python3.11.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <regex>
#include <sstream>

#include "cgroup.h"
#include "harness.h"

using namespace rt;

namespace {

const std::string kPython = "/usr/bin/python3.11";
// py_sites.py: bytearray(N) asks realloc(NULL, N + 1) for its buffer.
constexpr long long kBlockA = 100000 + 1, kBlockB = 200000 + 1;
constexpr int kCallsA = 3;

bool have_python() {
    if (access(kPython.c_str(), X_OK) == 0) return true;
    WARN("skipped: no " << kPython << " (tools/deps.txt)");
    return false;
}

int python_pid(const json& report) {
    for (const auto& p : report["processes"])
        if (p["comm"] == "python3.11") return p["pid"].get<int>();
    return -1;
}

// The stack of pid whose `field` is `bytes`.
const json* stack_where(const json& report, int pid, const char* field, long long bytes) {
    for (const json* s : stacks_of(report, pid))
        if ((*s)[field] == bytes) return s;
    return nullptr;
}

// The Python frames of a stack, in order, as "function:line", and a check
// that native frames come before and after them.
std::vector<std::string> python_frames(const json& stack) {
    std::vector<std::string> out;
    const json& f = stack["frames"];
    size_t first = f.size(), last = 0;
    for (size_t i = 0; i < f.size(); i++) {
        if (f[i]["kind"] != "python") {
            CHECK(f[i]["kind"] == "native");
            continue;
        }
        first = std::min(first, i);
        last = i;
        CHECK(basename_of(f[i].value("file", std::string())) == "py_sites.py");
        out.push_back(f[i].value("function", std::string("??")) + ":" +
                      (f[i]["line"].is_number() ? std::to_string(f[i]["line"].get<int>()) : "?"));
    }
    // bytearray's C code (PyByteArray_Resize) allocated; the interpreter's
    // start (Py_BytesMain, _start) called <module>.
    CHECK(first > 0);
    CHECK(last + 1 < f.size());
    if (first < f.size()) CHECK(f[first - 1]["kind"] == "native");
    CHECK(f[last + 1]["kind"] == "native");
    return out;
}

std::string at(const char* fn, const char* marker) {
    int line = marker_line("python/py_sites.py", marker);
    REQUIRE(line > 0);
    return std::string(fn) + ":" + std::to_string(line);
}

}  // namespace

TEST_CASE("memtop -- python3.11 py_sites.py: two Python lines over one C path are two stacks, each named",
          "[bpf][python][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    Run r = run_memtop_cmd({kPython, progs_src("python/py_sites.py")}, {"--sort", "allocated"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    int pid = python_pid(rep);
    REQUIRE(pid > 0);
    INFO(describe_stacks(rep, pid));
    // The interpreter frees them at exit: what they allocated in all.
    const json* a = stack_where(rep, pid, "alloc_bytes_total", kCallsA * kBlockA);
    const json* b = stack_where(rep, pid, "alloc_bytes_total", kBlockB);
    REQUIRE(a);
    REQUIRE(b);
    CHECK((*a)["allocs_total"] == kCallsA);
    CHECK((*b)["allocs_total"] == 1);
    CHECK(python_frames(*a) == std::vector<std::string>{at("site_a", "py_site_a"), at("run_sites", "py_run_a"),
                                                        at("<module>", "py_module")});
    CHECK(python_frames(*b) == std::vector<std::string>{at("site_b", "py_site_b"), at("run_sites", "py_run_b"),
                                                        at("<module>", "py_module")});
    // python_notes may say that some frames of the interpreter's start are
    // unnamed: imported modules' <module> code objects are freed once run,
    // before memtop reads them if their stack's event comes late.
}

// memtop holds a CPython it runs at Py_FinalizeEx, by a SIGURG it sends and
// discards (bpf/python_frames.h: py_finalize), to name its stacks while
// the code objects exist. The program never sees that signal: its handler
// would print when the atexit callback (run by Py_FinalizeEx, after the
// hold) next runs Python code.
TEST_CASE("memtop -- python3.11: the hold at Py_FinalizeEx names the frames and is not seen by the program",
          "[bpf][python][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    const char* script =
        "import atexit, signal\n"
        "signal.signal(signal.SIGURG, lambda *a: print('SIGURG', flush=True))\n"
        "def bye():\n"
        "    n = 0\n"
        "    for i in range(1000): n += i\n"
        "    print('atexit', n, flush=True)\n"
        "atexit.register(bye)\n"
        "KEEP = bytearray(123456)\n";
    Run r = run_memtop_cmd({kPython, "-c", script}, {"--sort", "allocated"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    // CMD writes to memtop's stderr (its stdout is the JSON).
    CHECK(std::count(r.err_lines.begin(), r.err_lines.end(), "atexit 499500") == 1);
    CHECK(std::count(r.err_lines.begin(), r.err_lines.end(), "SIGURG") == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    int pid = python_pid(rep);
    REQUIRE(pid > 0);
    INFO(describe_stacks(rep, pid));
    // bytearray(N) asks for N + 1 bytes (py_sites.py), on the script's line 8.
    const json* k = stack_where(rep, pid, "alloc_bytes_total", 123457);
    REQUIRE(k);
    bool named = false;
    for (const auto& f : (*k)["frames"])
        if (f["kind"] == "python")
            named = named || (f["function"] == "<module>" && f["line"] == 8 && f["file"] == "<string>");
    CHECK(named);
}

TEST_CASE("memtop -f -- sh -c 'python3.11 py_sites.py': a CPython the command starts gets Python frames",
          "[bpf][python][fork][exec][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    // `; true`: sh forks the interpreter rather than exec'ing it.
    Run r = run_memtop_cmd({"sh", "-c", kPython + " " + progs_src("python/py_sites.py") + "; true"},
                           {"-f", "--sort", "allocated"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    int pid = python_pid(rep);
    REQUIRE(pid > 0);
    INFO(describe_stacks(rep, pid));
    const json* a = stack_where(rep, pid, "alloc_bytes_total", kCallsA * kBlockA);
    REQUIRE(a);
    CHECK((*a)["allocs_total"] == kCallsA);
    CHECK(python_frames(*a) == std::vector<std::string>{at("site_a", "py_site_a"), at("run_sites", "py_run_a"),
                                                        at("<module>", "py_module")});
}

TEST_CASE("memtop -p on a python3.11 waiting on stdin: its blocks outstanding under their Python lines",
          "[bpf][python][attach][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    Attached at_ = run_attached({{kPython, progs_src("python/py_sites.py"), "--wait"}});
    const Run& r = at_.run;
    INFO(r.diag);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    int pid = at_.pids[0];
    INFO(describe_stacks(rep, pid));
    const json* a = stack_where(rep, pid, "bytes", kCallsA * kBlockA);
    const json* b = stack_where(rep, pid, "bytes", kBlockB);
    REQUIRE(a);
    REQUIRE(b);
    CHECK((*a)["allocs"] == kCallsA);
    CHECK(python_frames(*a) == std::vector<std::string>{at("site_a", "py_site_a"), at("run_sites", "py_run_a"),
                                                        at("<module>", "py_module_wait")});
    CHECK(python_frames(*b) == std::vector<std::string>{at("site_b", "py_site_b"), at("run_sites", "py_run_b"),
                                                        at("<module>", "py_module_wait")});
}

TEST_CASE("--lines sos.py: the line that allocates most is memory_profiler's", "[bpf][python][lines][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    const std::string script = progs_src("python/sos.py");
    // memory_profiler's table: "LINE  MEM MiB  INCREMENT MiB  OCCURRENCES  TEXT".
    std::string table;
    {
        FILE* p = popen((kPython + " -m memory_profiler " + script + " 2>&1").c_str(), "r");
        REQUIRE(p);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, p)) > 0) table.append(buf, n);
        if (pclose(p) != 0 || table.find("Line #") == std::string::npos) {
            WARN("skipped: no memory_profiler (python3-memory-profiler, tools/deps.txt): " << table);
            return;
        }
    }
    INFO(table);
    static const std::regex row(R"(^\s*(\d+)\s+[\d.]+ MiB\s+(-?[\d.]+) MiB\s+\d+\s+(.*)$)");
    int mp_line = 0, first_row = 0;
    double mp_most = -1;
    std::vector<int> function_lines;
    std::istringstream in(table);
    for (std::string l; std::getline(in, l);) {
        std::smatch m;
        if (!std::regex_match(l, m, row)) continue;
        int line = std::stoi(m[1]);
        if (!first_row) {
            first_row = line;  // the decorator's row: the process's memory before the call
            continue;
        }
        function_lines.push_back(line);
        if (std::stod(m[2]) > mp_most) {
            mp_most = std::stod(m[2]);
            mp_line = line;
        }
    }
    REQUIRE(mp_line == marker_line("python/sos.py", "sos_slice"));

    Run r = run_memtop_cmd({kPython, script}, {"--lines", "sos.py"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& lines = (*r.final_report)["lines"];
    INFO(lines.dump());
    REQUIRE(lines.is_object());
    REQUIRE(lines["matched"].is_string());
    CHECK(basename_of(lines["matched"].get<std::string>()) == "sos.py");
    int memtop_line = 0;
    unsigned long long memtop_most = 0;
    for (const auto& l : lines["lines"]) {
        int line = l["line"].get<int>();
        if (std::find(function_lines.begin(), function_lines.end(), line) == function_lines.end()) continue;
        if (l["alloc_bytes_total"].get<unsigned long long>() > memtop_most) {
            memtop_most = l["alloc_bytes_total"].get<unsigned long long>();
            memtop_line = line;
        }
    }
    CHECK(memtop_line == mp_line);
    // vals[1:] copies 333,332 pointers into one list: at least that much.
    CHECK(memtop_most >= 333332ULL * 8);
}

namespace {
// memtop -v says "memtop: pid N runs /usr/bin/python3.11 (CPython 3.11):
// Python frames on" once the kernel has pid's layout.
void wait_python_on(const std::vector<Child*>& all, Child& memtop, int pid) {
    const std::string who = "memtop: pid " + std::to_string(pid) + " runs ";
    auto l = wait_line(all, memtop, true, [&](const std::string& l) {
        return starts_with(l, who) && l.find("Python frames on") != std::string::npos;
    });
    INFO("memtop's stderr:\n"
         << [&] {
                std::string s;
                for (const auto& e : memtop.err_lines) s += e + "\n";
                return s;
            }());
    REQUIRE(l);
}

int python_processes(const json& report) {
    return report["self"]["python_processes"].get<int>();
}
}  // namespace

TEST_CASE("memtop --cgroup: CPythons running before it and started after it get Python frames",
          "[bpf][python][cgroup][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    // --cgroup finds CPythons as --heap-all and --container do (a scan of
    // the processes, then the kernel's stack events); a cgroup of its own
    // keeps the host's other processes out of the stack map.
    TestCgroup cg("py");
    const std::vector<std::string> argv = cg.run({kPython, progs_src("python/py_sites.py"), "--wait"});
    // Running before memtop: found by its scan.
    Child before, after, mt;
    const int before_pid = start_prog(before, argv);
    auto args = memtop_base_args();
    args.insert(args.end(), {"--cgroup", cg.name, "--exact", "-v"});
    start_memtop(mt, args);
    std::vector<Child*> all{&mt, &before};
    wait_memtop_ready(all, mt, "memtop: tracing cgroup");
    wait_python_on(all, mt, before_pid);
    // Started after: found from its first stacks (the kernel's events).
    const int after_pid = start_prog(after, argv, all);
    all.push_back(&after);
    wait_python_on(all, mt, after_pid);
    go(all, before);
    go(all, after);

    Run r = stop_memtop(all, mt, SIGINT);
    CHECK(end_prog(all, before) == 0);
    CHECK(end_prog(all, after) == 0);
    INFO(r.diag);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    CHECK(python_processes(rep) == 2);
    for (int pid : {before_pid, after_pid}) {
        INFO("pid " << pid << "\n" << describe_stacks(rep, pid));
        const json* a = stack_where(rep, pid, "bytes", kCallsA * kBlockA);
        const json* b = stack_where(rep, pid, "bytes", kBlockB);
        REQUIRE(a);
        REQUIRE(b);
        CHECK((*a)["allocs"] == kCallsA);
        CHECK((*b)["allocs"] == 1);
        CHECK(python_frames(*a) == std::vector<std::string>{at("site_a", "py_site_a"), at("run_sites", "py_run_a"),
                                                            at("<module>", "py_module_wait")});
        CHECK(python_frames(*b) == std::vector<std::string>{at("site_b", "py_site_b"), at("run_sites", "py_run_b"),
                                                            at("<module>", "py_module_wait")});
    }
}

TEST_CASE("memtop -p python3.11: the kernel's entry for its Python frames goes when it exits",
          "[bpf][python][attach][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    Child prog, mt;
    const int pid = start_prog(prog, {kPython, progs_src("python/py_sites.py"), "--wait"});
    start_memtop(mt, memtop_attach_args({pid}));
    std::vector<Child*> all{&mt, &prog};
    wait_tracing(all, mt, {pid});
    go(all, prog);
    // While it lives the kernel holds its layout (one process: -p's).
    size_t seen = 0;
    std::string last;
    auto live = report_until(
        all, mt, seen, [](const json& r) { return python_processes(r) == 1; }, &last);
    INFO(last);
    REQUIRE(live);
    // Its exit ends memtop (-p); the final report is read after the exit,
    // whose tracepoint deletes the entry.
    CHECK(end_prog(all, prog) == 0);
    Run r = stop_memtop(all, mt, 0);
    INFO(r.diag);
    REQUIRE(r.final_report);
    CHECK((*r.final_report)["processes"].size() >= 1);
    CHECK(python_processes(*r.final_report) == 0);
}
