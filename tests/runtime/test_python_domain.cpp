// Python's object-allocator domain (bpf/pymalloc.h): Debian 12's unmodified
// /usr/bin/python3.11 running tests/progs/python/py_objects.py,
// tracemalloc's classic example. Its ints are pymalloc objects that never
// reach malloc; memtop counts each one at its inlined pymalloc site (or,
// with tracemalloc's hook installed, at pymalloc's own function), exactly
// once. Tagged [host]: the VM's userland has no python3.11.
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "browser.h"
#include "harness.h"
#include "png_read.h"
#include "pprof_tool.h"

using namespace rt;

namespace {

const std::string kPython = "/usr/bin/python3.11";
// range(0, 100000) makes a new int for each value from 257 on (-5..256 are
// cached): 99,743 one-digit ints of 32 bytes (the 24-byte header and one
// 4-byte digit, rounded up to 8: sizeof(PyLongObject)).
constexpr long long kInts = 100000 - 257, kIntBytes = 32;

bool have_python() {
    if (access(kPython.c_str(), X_OK) == 0) return true;
    WARN("skipped: no " << kPython << " (tools/deps.txt)");
    return false;
}

// A frame's string field; "" when it is null (a frame not named).
std::string text_of(const json& f, const char* key) {
    return f.contains(key) && f[key].is_string() ? f[key].get<std::string>() : std::string();
}

const json* python_proc(const json& report) {
    for (const auto& p : report["processes"])
        if (p["comm"] == "python3.11") return &p;
    return nullptr;
}

// The Python-domain stacks of pid whose innermost Python frame is
// py_objects.py:line, summed.
struct LineSum {
    long long bytes = 0, allocs = 0, alloc_bytes_total = 0, allocs_total = 0;
    int stacks = 0;
};

LineSum python_line(const json& report, int pid, int line) {
    LineSum out;
    for (const auto& s : report["python"]["stacks"]) {
        if (s["pid"] != pid) continue;
        for (const auto& f : s["frames"]) {
            if (f["kind"] != "python") continue;
            if (basename_of(text_of(f, "file")) == "py_objects.py" && f["line"] == line) {
                out.bytes += s["bytes"].get<long long>();
                out.allocs += s["allocs"].get<long long>();
                out.alloc_bytes_total += s["alloc_bytes_total"].get<long long>();
                out.allocs_total += s["allocs_total"].get<long long>();
                out.stacks++;
            }
            break;  // the innermost Python frame only
        }
    }
    return out;
}

std::string describe_python(const json& report) {
    std::ostringstream o;
    o << "python: sites " << report["python"]["sites"] << ", skipped " << report["python"]["sites_skipped"] << "\n";
    int n = 0;
    for (const auto& s : report["python"]["stacks"]) {
        if (n++ >= 12) break;
        o << "  " << s["bytes"] << " B in " << s["allocs"] << " (total " << s["alloc_bytes_total"] << " in "
          << s["allocs_total"] << "):";
        for (const auto& f : s["frames"])
            if (f["kind"] == "python")
                o << " " << text_of(f, "function") << ":" << (f["line"].is_number() ? f["line"].get<int>() : -1);
        o << "\n";
    }
    return o.str();
}

}  // namespace

TEST_CASE(
    "memtop --exact (or --sample 0) -- python3.11 py_objects.py: every int of the example is one Python-domain "
    "object on its line",
    "[bpf][python][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    // --sort allocated: the ints are all freed by the end, and such stacks
    // are listed only in that order. --exact, or --sample 0 (whose help
    // says 0 is exact): -- CMD samples the domain in-process by default.
    auto exact = GENERATE(std::vector<std::string>{"--exact"}, std::vector<std::string>{"--sample", "0"});
    std::vector<std::string> args{"--python-objects", "--sort", "allocated"};
    args.insert(args.end(), exact.begin(), exact.end());
    Run r = run_memtop_cmd({kPython, progs_src("python/py_objects.py")}, args);
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    INFO(describe_python(rep));
    CHECK(rep["python"]["domain"] == "pymalloc");
    CHECK(rep["python"]["sites"].get<long long>() > 200);
    CHECK(rep["python"]["estimates"] == false);
    const json* p = python_proc(rep);
    REQUIRE(p);
    REQUIRE(p->contains("python"));
    const json& py = (*p)["python"];
    // The ints alone are 3.2 MB: the domain's peak is at least theirs.
    CHECK(py["peak_bytes"].get<long long>() >= kInts * kIntBytes);
    CHECK(py["allocs_total"].get<long long>() >= kInts);
    int line = marker_line("python/py_objects.py", "py_ints");
    REQUIRE(line > 0);
    LineSum s = python_line(rep, (*p)["pid"].get<int>(), line);
    CHECK(s.allocs_total == kInts);
    CHECK(s.alloc_bytes_total == kInts * kIntBytes);
    // app() returned: the list and its ints were freed, each free seen.
    CHECK(s.allocs == 0);
    CHECK(s.bytes == 0);
}

// The domain costs a trap per object: only --python-objects turns it on.
// Without it nothing of it is probed, and the ints are nowhere.
TEST_CASE("memtop -- python3.11 py_objects.py without --python-objects: no Python domain, nothing probed for it",
          "[bpf][python][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    Run r = run_memtop_cmd({kPython, progs_src("python/py_objects.py")}, {"--sort", "allocated"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    CHECK(rep["python"]["sites"].get<long long>() == 0);
    CHECK(rep["python"]["stacks"].empty());
    const json* p = python_proc(rep);
    REQUIRE(p);
    CHECK_FALSE(p->contains("python"));
    int line = marker_line("python/py_objects.py", "py_ints");
    REQUIRE(line > 0);
    CHECK(python_line(rep, (*p)["pid"].get<int>(), line).allocs_total == 0);
}

// tracemalloc counts from its start; memtop counts the blocks allocated
// while it traces. So memtop attaches (-p) to the script once tracemalloc
// has started and the script waits: both then see the same allocations.
TEST_CASE("memtop -p python3.11 py_objects.py --tracemalloc: memtop's Python domain agrees with tracemalloc",
          "[bpf][python][attach][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    Child prog;
    int pid = start_prog(prog, {kPython, progs_src("python/py_objects.py"), "--tracemalloc", "--wait", "--keep"});
    Child mt;
    std::vector<Child*> all{&prog, &mt};
    auto args = memtop_attach_args({pid});
    // --exact: -p samples the domain at pymalloc's sites by default.
    args.insert(args.end(), {"--python-objects", "--exact"});
    start_memtop(mt, args);
    wait_tracing(all, mt, {pid});
    // app() runs; its figures are read from a report made after it
    // returned (the second after "measured": the first may have begun
    // before), before the script takes tracemalloc's snapshot.
    tell(all, prog, "go", "measured");
    size_t seen = mt.out_lines.size();
    REQUIRE(next_report(all, mt, seen));
    auto after = next_report(all, mt, seen);
    REQUIRE(after);
    // memtop ends before the script takes tracemalloc's snapshot: traced
    // exactly, its ~100,000 tuples took over the 30 s limit on a busy host,
    // and nothing it allocates is compared.
    Run r = stop_memtop(all, mt, SIGINT);
    go(all, prog);
    REQUIRE(end_prog(all, prog) == 0);
    INFO(r.diag);
    REQUIRE(r.final_report);
    long long current = -1, peak = -1, top_size = -1, top_count = -1;
    std::string top_where;
    for (const auto& l : prog.out_lines) {
        long long a, b;
        char where[512];
        if (sscanf(l.c_str(), "traced %lld %lld", &a, &b) == 2) current = a, peak = b;
        if (sscanf(l.c_str(), "top %511s %lld %lld", where, &a, &b) == 3)
            top_where = where, top_size = a, top_count = b;
    }
    REQUIRE(peak > 0);
    REQUIRE(top_count > 0);
    const json& rep = *r.final_report;
    INFO(describe_python(rep));
    INFO("tracemalloc: current " << current << ", peak " << peak << "; top " << top_where << " " << top_size << " B in "
                                 << top_count);
    const json* p = python_proc(rep);
    REQUIRE(p);
    const json* pa = python_proc(*after);
    REQUIRE(pa);
    REQUIRE(pa->contains("python"));
    const json& py = (*pa)["python"];
    int line = marker_line("python/py_objects.py", "py_ints");
    REQUIRE(line > 0);
    // tracemalloc's top line is the `for` line, and memtop's objects there
    // are tracemalloc's blocks there.
    CHECK(basename_of(top_where) == "py_objects.py:" + std::to_string(line));
    LineSum s = python_line(rep, pid, line);
    CHECK(s.allocs_total == top_count);
    CHECK(s.alloc_bytes_total == top_size);
    CHECK(s.allocs_total == kInts);
    // (current, peak) after app(): the list is kept (--keep), so both are
    // the list and its ints, within 2%.
    long long mcur = py["bytes"].get<long long>(), mpeak = py["peak_bytes"].get<long long>();
    WARN("tracemalloc (current, peak) = (" << current << ", " << peak << "); memtop (" << mcur << ", " << mpeak << ")");
    CHECK(mpeak >= peak * 98 / 100);
    CHECK(mpeak <= peak * 102 / 100);
    CHECK(mcur >= current * 98 / 100);
    CHECK(mcur <= current * 102 / 100);
}

// --python-objects --sample N -- CMD: the preloaded sampler hooks CPython's
// object allocator (user/sampler/sampler.c) and reports its sampled objects
// only; pymalloc's sites are not probed, so an unsampled object takes no
// trap.
namespace {

bool err_says(const Run& r, const std::string& what) {
    for (const auto& l : r.err_lines)
        if (l.find(what) != std::string::npos) return true;
    return false;
}

// The example's `for` line as the in-process sampler saw it, at --sample N
// (0: memtop's default for --python-objects -- CMD).
LineSum sampled_example(uint64_t sample, Run& r) {
    std::vector<std::string> args = {"--python-objects", "--sort", "allocated"};
    if (sample) args.insert(args.end(), {"--sample", std::to_string(sample)});
    r = run_memtop_cmd({kPython, progs_src("python/py_objects.py")}, args);
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    INFO(describe_python(rep));
    CHECK(err_says(r, "Python objects sampled in-process by memtop's preloaded sampler"));
    CHECK_FALSE(err_says(r, "counted at pymalloc's sites"));
    // Not one pymalloc site probed, and the figures are estimates.
    CHECK(rep["python"]["sites"].get<long long>() == 0);
    CHECK(rep["python"]["estimates"] == true);
    const json* p = python_proc(rep);
    REQUIRE(p);
    REQUIRE(p->contains("python"));
    CHECK((*p)["python"]["estimates"] == true);
    int line = marker_line("python/py_objects.py", "py_ints");
    REQUIRE(line > 0);
    return python_line(rep, (*p)["pid"].get<int>(), line);
}

}  // namespace

// At --sample 1 the countdown's draws (mean one byte) never exceed 22
// bytes (bpf/sample_math.h cuts the tail at 22.2 means), so every 32-byte
// int is sampled, with weight 1/(1 - e^-32) = 1 + 1.3e-14: the line's
// estimates round to the exact run's numbers, exactly.
TEST_CASE(
    "memtop --python-objects --sample 1 -- python3.11 py_objects.py: sampled in-process, every int of the example",
    "[bpf][python][sample][preload][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    Run r;
    LineSum s = sampled_example(1, r);
    CHECK(s.allocs_total == kInts);
    CHECK(s.alloc_bytes_total == kInts * kIntBytes);
    CHECK(s.allocs == 0);
    CHECK(s.bytes == 0);
}

// At --sample 65536 an int is sampled with p = 1 - e^(-32/65536): the line's
// bytes are an estimate with variance sum s^2 (1-p)/p, sigma ~ 457 KB for
// the 3.19 MB of ints (~ sqrt(T * B)).
TEST_CASE("memtop --python-objects --sample 65536 -- python3.11 py_objects.py: the line's bytes within 4 sigma",
          "[bpf][python][sample][preload][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    Run r;
    LineSum s = sampled_example(65536, r);
    const double bytes = static_cast<double>(kInts * kIntBytes);
    const double p = -std::expm1(-static_cast<double>(kIntBytes) / 65536.0);
    const double sigma = std::sqrt(static_cast<double>(kInts) * kIntBytes * kIntBytes * (1 - p) / p);
    WARN("estimated " << s.alloc_bytes_total << " B in " << s.allocs_total << " ints (exact " << bytes << ", sigma "
                      << sigma << ")");
    CHECK(std::abs(static_cast<double>(s.alloc_bytes_total) - bytes) <= 4 * sigma);
    // Each (stack, size) aggregate's counts are rounded apart: half an int each.
    CHECK(std::llabs(s.allocs_total * kIntBytes - s.alloc_bytes_total) <= kIntBytes * s.stacks);
}

// --python-objects -- CMD without --sample or --exact: the Python domain is
// sampled in-process every 65536 bytes by the Python-only sampler
// (libmemtop_pysampler.so), said once; the native heap stays exact.
TEST_CASE("memtop --python-objects -- python3.11 py_objects.py: sampled by default, the line within 4 sigma",
          "[bpf][python][sample][preload][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    Run r;
    LineSum s = sampled_example(0, r);
    CHECK(err_says(r,
                   "memtop: Python objects sampled every 65536 bytes in-process: Python-domain figures are "
                   "estimates (--exact counts every one)"));
    // The heap is not sampled: not said, and its figures are not estimates.
    CHECK_FALSE(err_says(r, "heap allocations sampled"));
    REQUIRE(r.final_report);
    CHECK_FALSE(r.final_report->contains("sampling"));
    const double bytes = static_cast<double>(kInts * kIntBytes);
    const double p = -std::expm1(-static_cast<double>(kIntBytes) / 65536.0);
    const double sigma = std::sqrt(static_cast<double>(kInts) * kIntBytes * kIntBytes * (1 - p) / p);
    WARN("default: estimated " << s.alloc_bytes_total << " B in " << s.allocs_total << " ints (exact " << bytes
                               << ", sigma " << sigma << ")");
    CHECK(std::abs(static_cast<double>(s.alloc_bytes_total) - bytes) <= 4 * sigma);
    CHECK(std::abs(static_cast<double>(s.allocs_total) - kInts) <= 4 * sigma / kIntBytes + s.stacks);
}

// -p: no sampler can be preloaded into a running CPython, so its objects
// are sampled in BPF at pymalloc's sites (bpf/pymalloc.h): every object
// still traps, only the sampled ones are walked and recorded, every 64 KiB
// on average by default. The blocks beneath pymalloc (over 512 bytes: the
// list's items array once it holds more than 64) stay counted. The script
// is parked (--wait) while memtop attaches, so both runs see the same
// allocations: app()'s 99,743 ints on the `for` line and the list's
// growth on the `append` line, all kept (--keep).
namespace {

struct AttachedExample {
    json report;
    int pid = 0;
    std::vector<std::string> err;
};

AttachedExample attached_example(const std::vector<std::string>& extra) {
    Child prog;
    AttachedExample out;
    out.pid = start_prog(prog, {kPython, progs_src("python/py_objects.py"), "--wait", "--keep"});
    Child mt;
    std::vector<Child*> all{&prog, &mt};
    auto args = memtop_attach_args({out.pid});
    args.insert(args.end(), {"--python-objects", "--sort", "allocated"});
    args.insert(args.end(), extra.begin(), extra.end());
    start_memtop(mt, args);
    wait_tracing(all, mt, {out.pid});
    go(all, prog);
    Run r = stop_memtop(all, mt, SIGINT);
    REQUIRE(end_prog(all, prog) == 0);
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    out.report = *r.final_report;
    out.err = r.err_lines;
    return out;
}

bool said(const std::vector<std::string>& lines, const std::string& what) {
    for (const auto& l : lines)
        if (l.find(what) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("memtop -p python3.11 py_objects.py --python-objects: sampled in BPF, each line within 4 sigma of --exact's",
          "[bpf][python][sample][attach][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    const int ints_line = marker_line("python/py_objects.py", "py_ints");
    const int append_line = marker_line("python/py_objects.py", "py_append");
    REQUIRE(ints_line > 0);
    REQUIRE(append_line > 0);

    AttachedExample ex = attached_example({"--exact"});
    INFO(describe_python(ex.report));
    CHECK_FALSE(said(ex.err, "Python objects sampled"));
    CHECK(ex.report["python"]["estimates"] == false);
    const json* pe = python_proc(ex.report);
    REQUIRE(pe);
    REQUIRE(pe->contains("python"));
    CHECK((*pe)["python"]["estimates"] == false);
    // Counted: every int, kept. Attached before app(), the line also
    // allocated the loop's own few objects (the range, its iterator: 6
    // objects, 224 bytes here), freed since.
    LineSum ints_exact = python_line(ex.report, ex.pid, ints_line);
    CHECK(ints_exact.allocs == kInts);
    CHECK(ints_exact.bytes == kInts * kIntBytes);
    CHECK(ints_exact.allocs_total >= kInts);
    CHECK(ints_exact.allocs_total <= kInts + 8);
    CHECK(ints_exact.alloc_bytes_total >= kInts * kIntBytes);
    CHECK(ints_exact.alloc_bytes_total <= kInts * kIntBytes + 8 * 64);
    LineSum append_exact = python_line(ex.report, ex.pid, append_line);
    CHECK(append_exact.bytes > 100000 * 8);  // the items array of 100,000 pointers
    CHECK(append_exact.allocs == 1);

    AttachedExample sm = attached_example({});
    INFO(describe_python(sm.report));
    CHECK(said(sm.err,
               "memtop: Python objects sampled every 65536 bytes at pymalloc's sites: Python-domain figures are "
               "estimates (--exact counts every one)"));
    CHECK(said(sm.err, "pid " + std::to_string(sm.pid) +
                           ": Python objects sampled every 65536 bytes at pymalloc's sites, a trap each"));
    // The heap is exact (-p's default), so not marked.
    CHECK_FALSE(sm.report.contains("sampling"));
    CHECK(sm.report["python"]["estimates"] == true);
    CHECK(sm.report["python"]["sites"].get<long long>() > 200);
    const json* ps = python_proc(sm.report);
    REQUIRE(ps);
    REQUIRE(ps->contains("python"));
    CHECK((*ps)["python"]["estimates"] == true);

    // An int is sampled with p = 1 - e^(-32/65536): sigma ~ sqrt(T * B).
    const double p = -std::expm1(-static_cast<double>(kIntBytes) / 65536.0);
    const double sigma = std::sqrt(static_cast<double>(kInts) * kIntBytes * kIntBytes * (1 - p) / p);
    LineSum ints = python_line(sm.report, sm.pid, ints_line);
    WARN("-p sampled: the `for` line " << ints.alloc_bytes_total << " B in " << ints.allocs_total << " ints, "
                                       << ints.bytes << " B kept (exact " << ints_exact.alloc_bytes_total << ", sigma "
                                       << sigma << ")");
    CHECK(std::abs(static_cast<double>(ints.alloc_bytes_total - ints_exact.alloc_bytes_total)) <= 4 * sigma);
    CHECK(std::abs(static_cast<double>(ints.bytes - ints_exact.bytes)) <= 4 * sigma);
    CHECK(std::abs(static_cast<double>(ints.allocs_total - kInts)) <= 4 * sigma / kIntBytes + ints.stacks);
    // Not every object was recorded: a sample, ~1 in 2,000 ints, each
    // standing for ~2,000 (a counted run would give exactly kInts).
    CHECK(ints.allocs_total != kInts);
    // The append line: the items array's growth, pymalloc blocks while it
    // is small (sampled), glibc's after (counted). What is kept is the
    // last array, counted: the same bytes as --exact's, none of it moved
    // into the heap.
    LineSum append = python_line(sm.report, sm.pid, append_line);
    const double sigma_append = std::sqrt(65536.0 * static_cast<double>(append_exact.alloc_bytes_total));
    WARN("-p sampled: the append line " << append.alloc_bytes_total << " B allocated, " << append.bytes
                                        << " B kept (exact " << append_exact.alloc_bytes_total << ", "
                                        << append_exact.bytes << ")");
    CHECK(std::abs(static_cast<double>(append.alloc_bytes_total - append_exact.alloc_bytes_total)) <= 4 * sigma_append);
    CHECK(append.bytes == append_exact.bytes);
    CHECK(append.allocs == 1);
    // The process's domain: the sampled ints' estimate and the counted array.
    const double sigma_proc = std::sqrt(65536.0 * static_cast<double>((*pe)["python"]["bytes"].get<long long>()));
    CHECK(std::abs(static_cast<double>((*ps)["python"]["bytes"].get<long long>() -
                                       (*pe)["python"]["bytes"].get<long long>())) <= 4 * sigma_proc);
}

// The native heap of a script with no C extension is the same whether the
// Python domain is sampled (default) or exact: the Python-only sampler has
// no malloc of its own, and the blocks pymalloc passes to PyMem_RawMalloc
// for it are the domain's in both (bpf/pymalloc.h, MEMTOP_PY_MSG_RAW).
// Every block of up to 512 bytes (all that native code asks for here but
// a few buffers) is the same in both, in number and bytes. Over 512 bytes
// the default heap may hold fewer: the exact domain misses some Python
// blocks at sites it cannot decode (PyMem_Calloc's, the compiler's
// PyMem_Malloc'd arena blocks: about 140 here), which --exact leaves in the
// heap and the default counts in the domain (docs/design.md, "Sampled by
// default"). PYTHONHASHSEED=0: the same dicts, so the same mallocs, in both.
TEST_CASE("memtop --python-objects -- python3.11: the native heap of the default run is --exact's",
          "[bpf][python][sample][preload][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    struct Heap {
        long long small_allocs = 0, small_bytes = 0, big_allocs = 0, big_bytes = 0, allocs = 0, frees = 0;
    };
    setenv("PYTHONHASHSEED", "0", 1);
    auto heap_of = [](const std::vector<std::string>& extra) {
        std::vector<std::string> args = {"--python-objects", "--sort", "allocated"};
        args.insert(args.end(), extra.begin(), extra.end());
        Run r = run_memtop_cmd({kPython, progs_src("python/py_objects.py")}, args);
        INFO(r.diag);
        REQUIRE(r.exit_code == 0);
        REQUIRE(r.final_report);
        const json& rep = *r.final_report;
        CHECK_FALSE(rep.contains("sampling"));
        const json* p = python_proc(rep);
        REQUIRE(p);
        Heap h;
        h.allocs = (*p)["allocs_total"].get<long long>();
        h.frees = (*p)["frees_total"].get<long long>();
        for (const auto& s : rep["stacks"]) {
            if (s["pid"] != (*p)["pid"]) continue;
            long long n = s["allocs_total"].get<long long>(), b = s["alloc_bytes_total"].get<long long>();
            if (!n) continue;
            (b <= 512 * n ? h.small_allocs : h.big_allocs) += n;
            (b <= 512 * n ? h.small_bytes : h.big_bytes) += b;
        }
        return h;
    };
    Heap d = heap_of({});
    Heap e = heap_of({"--exact"});
    unsetenv("PYTHONHASHSEED");
    WARN("heap blocks <= 512 B (count, bytes): default "
         << d.small_allocs << " " << d.small_bytes << ", --exact " << e.small_allocs << " " << e.small_bytes
         << "; over 512 B: default " << d.big_allocs << " " << d.big_bytes << ", --exact " << e.big_allocs << " "
         << e.big_bytes << "; allocations " << d.allocs << " / " << e.allocs);
    CHECK(d.small_allocs > 500);
    CHECK(d.small_allocs == e.small_allocs);
    CHECK(d.small_bytes == e.small_bytes);
    CHECK(d.big_allocs <= e.big_allocs);
    CHECK(d.big_bytes <= e.big_bytes);
    CHECK(d.allocs == d.small_allocs + d.big_allocs);
    CHECK(e.allocs == e.small_allocs + e.big_allocs);
}

// A CPython that replaces the sampler's hooks after it installed them
// (-X dev=1, a spelling of -X dev that memtop's check of the command line
// does not read; a debug build; PYTHONMALLOC set from inside) counts no
// object: the sampler says so at exit, and memtop names the process
// instead of showing its empty domain as the truth. Here a child of CMD
// (-f), started with it.
TEST_CASE("memtop -f --python-objects -- python3.11 starting python3.11 -X dev=1: its hooks lost, said with its pid",
          "[bpf][python][sample][preload][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    std::string child = "import subprocess, sys; subprocess.run([sys.executable, '-X', 'dev=1', '" +
                        progs_src("python/py_objects.py") + "'], check=True)";
    Run r = run_memtop_cmd({kPython, "-c", child}, {"-f", "--python-objects"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    // CMD's pid is in memtop's "tracing ... (pid N)"; the child is the other.
    int parent = -1, dev = -1;
    for (const auto& l : r.err_lines)
        if (l.rfind("memtop: tracing", 0) == 0 && l.find("(pid ") != std::string::npos)
            parent = std::atoi(l.c_str() + l.find("(pid ") + 5);
    for (const auto& p : rep["processes"])
        if (p["comm"] == "python3.11" && p["pid"] != parent) dev = p["pid"].get<int>();
    REQUIRE(parent > 0);
    REQUIRE(dev > 0);
    std::string said;
    for (const auto& l : r.err_lines)
        if (l.find("replaced memtop's sampler hooks") != std::string::npos) said = l;
    INFO("stderr: " << said);
    CHECK(said.rfind("memtop: pid " + std::to_string(dev) + ": ", 0) == 0);
    CHECK(said.find("incomplete") != std::string::npos);
    bool noted = false;
    for (const auto& n : rep["python_notes"])
        if (n.get<std::string>().find("replaced memtop's sampler hooks") != std::string::npos) noted = true;
    CHECK(noted);
    // Exactly one of them: the parent kept its hooks.
    int lines = 0;
    for (const auto& l : r.err_lines)
        if (l.find("replaced memtop's sampler hooks") != std::string::npos) lines++;
    CHECK(lines == 1);
}

// The Python domain in every output of one run: the recording read back by
// `memtop report`, the pprof profile read by `go tool pprof`, the folded
// stacks, and the HTML page in headless chromium. The exact numbers are the
// example's ints, on their line.
namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/memtop-pyexp-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// `go tool pprof -raw`: the header's sample types, each sample's values and
// locations, and each location's innermost line (function, file, line).
struct RawProfile {
    std::vector<std::string> types;
    std::vector<std::pair<std::vector<long long>, std::vector<std::string>>> samples;
    struct Loc {
        std::string function, file;
        int line = 0;
    };
    std::map<std::string, Loc> locations;
};

RawProfile parse_raw_full(const std::vector<std::string>& lines) {
    RawProfile raw;
    enum { Head, Types, Samples, Locations, Mappings } part = Head;
    std::regex loc_re(R"(^\s*(\d+):\s+0x[0-9a-f]+\s+(?:M=\d+\s+)?(\S+)\s+(\S+):(\d+)\s)");
    for (const auto& l : lines) {
        if (l.rfind("Samples:", 0) == 0) {
            part = Types;
            continue;
        }
        if (l.rfind("Locations", 0) == 0) part = Locations;
        if (l.rfind("Mappings", 0) == 0) part = Mappings;
        if (part == Types) {
            std::istringstream in(l);
            for (std::string t; in >> t;) raw.types.push_back(t.substr(0, t.find('[')));  // "inuse_space/bytes[dflt]"
            part = Samples;
        } else if (part == Samples && l.find(':') != std::string::npos && l.find(":[") == std::string::npos) {
            std::istringstream values(l.substr(0, l.find(':'))), locs(l.substr(l.find(':') + 1));
            std::vector<long long> v;
            for (long long x; values >> x;) v.push_back(x);
            std::vector<std::string> ids;
            for (std::string id; locs >> id;) ids.push_back(id);
            raw.samples.push_back({v, ids});
        } else if (part == Locations) {
            std::smatch m;
            if (std::regex_search(l, m, loc_re)) raw.locations[m[1]] = {m[2], m[3], std::stoi(m[4])};
        }
    }
    return raw;
}

// The samples whose innermost Python frame (the first location in a .py
// file) is py_objects.py:line: their values summed, and the values of the
// one with the most python_alloc_space (the ints' own stack).
struct RawLine {
    std::vector<long long> sum, top;
};

RawLine raw_python_line(const RawProfile& raw, int line) {
    RawLine out{std::vector<long long>(raw.types.size(), 0), std::vector<long long>(raw.types.size(), 0)};
    size_t space = 0;
    for (size_t i = 0; i < raw.types.size(); i++)
        if (raw.types[i] == "python_alloc_space/bytes") space = i;
    for (const auto& [values, ids] : raw.samples)
        for (const auto& id : ids) {
            auto it = raw.locations.find(id);
            if (it == raw.locations.end()) continue;
            const auto& f = it->second.file;
            if (f.size() < 3 || f.compare(f.size() - 3, 3, ".py") != 0) continue;
            if (basename_of(f) == "py_objects.py" && it->second.line == line && values.size() == out.sum.size()) {
                for (size_t i = 0; i < values.size(); i++) out.sum[i] += values[i];
                if (values[space] > out.top[space]) out.top = values;
            }
            break;
        }
    return out;
}

long long raw_value(const RawProfile& raw, const std::vector<long long>& v, const std::string& type) {
    for (size_t i = 0; i < raw.types.size(); i++)
        if (raw.types[i] == type) return v[i];
    FAIL("no sample type " << type);
    return -1;
}

}  // namespace

TEST_CASE("memtop --python-objects -- python3.11 py_objects.py: the Python domain in every file output",
          "[bpf][python][record][export][html][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    TempDir dir;
    const std::string rec = dir.path + "/run.gz", prof = dir.path + "/heap.pb.gz", folded = dir.path + "/stacks.folded",
                      live_html = dir.path + "/live.html", page = dir.path + "/report.html";
    // The domain's default, sampled in-process: the outputs must carry the
    // live report's estimates as they are (exact counting names every
    // Python stack of the interpreter's start-up too, 18,107 of 55 frames
    // for this script, and takes minutes to write and read back; the
    // exact figures are the other tests').
    Run r = run_memtop_cmd({kPython, progs_src("python/py_objects.py")},
                           {"--python-objects", "--sort", "allocated", "--record", rec, "--pprof", prof, "--folded",
                            folded, "--html", live_html},
                           std::chrono::seconds(120));
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& live = *r.final_report;
    INFO(describe_python(live));
    const json* p = python_proc(live);
    REQUIRE(p);
    REQUIRE(p->contains("python"));
    const int pid = (*p)["pid"].get<int>();
    const int line = marker_line("python/py_objects.py", "py_ints");
    REQUIRE(line > 0);
    LineSum s = python_line(live, pid, line);
    // Sampled every 64 KiB on average: ~49 samples of the 3.2 MB of ints.
    REQUIRE(s.allocs_total > 0);
    REQUIRE(s.alloc_bytes_total > 0);
    CHECK(live["python"].value("estimates", false));

    // One run (the final report names every Python stack: a minute on a
    // busy host), each output read in turn.
    {
        INFO("memtop report FILE --json: the live run's final JSON, Python domain included");
        Run rep = run_memtop({memtop_path(), "report", rec, "--json"}, std::chrono::seconds(120));
        INFO(rep.diag);
        REQUIRE(rep.exit_code == 0);
        REQUIRE(rep.out_lines.size() == 1);
        const json back = json::parse(rep.out_lines[0]);
        CHECK(back["python"] == live["python"]);
        const json* bp = python_proc(back);
        REQUIRE(bp);
        CHECK((*bp)["python"] == (*p)["python"]);
        LineSum b = python_line(back, pid, line);
        CHECK(b.allocs_total == s.allocs_total);
        CHECK(b.alloc_bytes_total == s.alloc_bytes_total);
        CHECK(rep.out_lines[0] == r.out_lines.back());
        // The text view of the recording: the same section as a live run's.
        Run text = run_memtop({memtop_path(), "report", rec}, std::chrono::seconds(120));
        INFO(text.diag);
        REQUIRE(text.exit_code == 0);
        std::string all;
        for (const auto& l : text.out_lines) all += l + "\n";
        CHECK(all.find("python domain (pymalloc, not in HEAP; ESTIMATES, sampled): pid " + std::to_string(pid) +
                       ": ") != std::string::npos);
        CHECK(all.find(std::to_string((*p)["python"]["allocs_total"].get<long long>()) + " allocated") !=
              std::string::npos);
        CHECK(all.find("Top stacks of the Python domain") != std::string::npos);
    }

    if (auto go = go_binary(); !go) {
        if (ci_mode()) FAIL("no go (golang-go, tools/deps.txt)");
        WARN("skipped: no go");
    } else {
        INFO("go tool pprof -raw: the python_* sample types, the line's estimate as the live report's");
        RawProfile raw = parse_raw_full(pprof(*go, dir.path, {"-raw", prof}));
        std::string types;
        for (const auto& t : raw.types) types += t + " ";
        INFO("sample types: " << types);
        REQUIRE(raw.types.size() == 8);
        CHECK(raw.types[4] == "python_alloc_objects/count");
        CHECK(raw.types[7] == "python_inuse_space/bytes");
        RawLine rl = raw_python_line(raw, line);
        const std::vector<long long>& v = rl.top;
        // The line as a whole: the live report's figures, all freed.
        CHECK(raw_value(raw, rl.sum, "python_alloc_objects/count") == s.allocs_total);
        CHECK(raw_value(raw, rl.sum, "python_alloc_space/bytes") == s.alloc_bytes_total);
        CHECK(raw_value(raw, rl.sum, "python_inuse_objects/count") == 0);
        CHECK(raw_value(raw, rl.sum, "python_inuse_space/bytes") == 0);
        // Not counted again as heap.
        CHECK(raw_value(raw, v, "alloc_space/bytes") == 0);
    }

    {
        INFO("--folded: the Python stacks with bytes left, under [python objects], as many bytes as the report's");
        std::string text = slurp(folded);
        REQUIRE_FALSE(text.empty());
        // Which sampled objects are still alive at the end is chance: the
        // folded lines must add up to what the live report says is left.
        long long left = 0, folded_left = 0;
        for (const auto& st : live["python"]["stacks"])
            if (st["pid"] == pid) left += st["bytes"].get<long long>();
        const std::string prefix = "python3.11 (" + std::to_string(pid) + ");[python objects];";
        std::istringstream lines(text);
        for (std::string l; std::getline(lines, l);)
            if (l.rfind(prefix, 0) == 0) folded_left += std::stoll(l.substr(l.rfind(' ') + 1));
        CHECK(folded_left == left);
        CHECK((left > 0) == (text.find(prefix) != std::string::npos));
    }

    {
        INFO("--html, live and from the recording: chromium shows the Python section and its flame graph");
        RT_REQUIRE_BROWSER();
        Run rep = run_memtop({memtop_path(), "report", rec, "--html", page}, std::chrono::seconds(120));
        INFO(rep.diag);
        REQUIRE(rep.exit_code == 0);
        for (const auto& [file, name] : {std::pair{live_html, "python-live"}, std::pair{page, "python-recording"}}) {
            INFO(name);
            json seen = rt::look_at(file, name, "", "app");
            INFO(seen.dump(1));
            CHECK(seen["errors"].empty());
            REQUIRE(seen.contains("python"));
            CHECK(seen["python"]["shown"] == true);
            REQUIRE(seen["python"]["rows"].size() >= 1);
            bool ours = false;
            for (const auto& row : seen["python"]["rows"])
                if (row[0] == std::to_string(pid)) {
                    ours = true;
                    CHECK(row[3] == (*p)["python"]["peak_bytes"].get<long long>());
                    CHECK(row[5] == (*p)["python"]["allocs_total"].get<long long>());
                }
            CHECK(ours);
            // The flame graph of Python objects allocated in all: app's line
            // holds the ints (and the list's own small blocks).
            CHECK(seen["python"]["alloc"]["app"][0].get<long long>() >= s.alloc_bytes_total);
            CHECK(seen["python"]["alloc"]["app"][1].get<long long>() >= s.allocs_total);
        }
    }
}

// The Python domain over time, and an exact run's final report kept small:
// `--python-objects --exact --record` of py_objects.py --keep (its 99,743
// ints stay alive until the interpreter's end). The samples carry the
// domain (format version 3); --plot's Python line, --peak-python and the
// HTML chart read them back; the final report lists the top -T Python
// stacks and one remainder, which add up to the exact totals, as `go tool
// pprof` reads them.
namespace {

std::vector<json> records_of(const std::string& file) {
    std::vector<json> out;
    gzFile g = gzopen(file.c_str(), "rb");
    if (!g) return out;
    std::string text;
    char buf[65536];
    for (int n; (n = gzread(g, buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
    gzclose(g);
    size_t pos = 0;
    for (size_t end; (end = text.find('\n', pos)) != std::string::npos; pos = end + 1)
        out.push_back(json::parse(text.substr(pos, end - pos)));
    return out;
}

}  // namespace

TEST_CASE("memtop --python-objects --exact --record: the Python domain over time; the final stacks cut to -T",
          "[bpf][python][record][plot][html][export][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    TempDir dir;
    const std::string rec = dir.path + "/run.gz", prof = dir.path + "/py.pb.gz", svg = dir.path + "/plot.svg",
                      page = dir.path + "/report.html";
    // -T at its default (10): the final report's Python stacks are cut to it.
    Run r =
        run_memtop({memtop_path(), "--json", "-d", "0.5", "--record-interval", "0.05", "--python-objects", "--exact",
                    "--record", rec, "--pprof", prof, "--", kPython, progs_src("python/py_objects.py"), "--keep"},
                   std::chrono::seconds(180));
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& live = *r.final_report;
    const json* p = python_proc(live);
    REQUIRE(p);
    REQUIRE(p->contains("python"));
    const json& domain = (*p)["python"];
    CHECK_FALSE(domain["estimates"].get<bool>());
    const int pid = (*p)["pid"].get<int>();
    const long long final_bytes = domain["bytes"].get<long long>(), peak_bytes = domain["peak_bytes"].get<long long>();

    // The recording as written: version 3, samples with the domain.
    const std::vector<json> recs = records_of(rec);
    REQUIRE(recs.size() > 2);
    CHECK(recs[0]["version"] == 3);
    long long top = -1, samples_with = 0, reports = 0;
    const json* last_report = nullptr;
    for (const auto& x : recs) {
        if (x["type"] == "sample")
            for (const auto& e : x["processes"])
                if (e["pid"] == pid && e.contains("py_bytes")) {
                    samples_with++;
                    top = std::max(top, e["py_bytes"].get<long long>());
                    CHECK(e["py_bytes"].get<long long>() <= e["py_peak_bytes"].get<long long>());
                }
        if (x["type"] == "report") {
            reports++;
            last_report = &x["report"];
            for (const auto& e : x["report"]["processes"])
                if (e["pid"] == pid) top = std::max(top, e["py_bytes"].get<long long>());
        }
    }
    INFO("samples with the domain: " << samples_with << ", highest py_bytes " << top);
    REQUIRE(samples_with >= 3);
    // The list of ints was alive for several samples, and none passes the
    // kernel's exact peak.
    CHECK(top >= kInts * kIntBytes);
    CHECK(top <= peak_bytes);

    {
        INFO("the final report: the top -T (10) Python stacks and one remainder, adding up to the exact totals");
        REQUIRE(last_report);
        const json& py = (*last_report)["python"];
        CHECK(py["all_stacks"].size() <= 10);
        REQUIRE(py["rest"].size() == 1);
        const json& rest = py["rest"][0];
        CHECK(rest["stats"]["pid"] == pid);
        CHECK(rest["stacks"].get<long long>() > 1000);  // the interpreter's start-up
        long long bytes = rest["stats"]["bytes"].get<long long>(), allocs_total = rest["stats"]["allocs_total"];
        for (const auto& st : py["all_stacks"]) {
            bytes += st["stats"]["bytes"].get<long long>();
            allocs_total += st["stats"]["allocs_total"].get<long long>();
        }
        CHECK(bytes == final_bytes);
        CHECK(allocs_total == domain["allocs_total"].get<long long>());
    }

    if (auto go = go_binary(); !go) {
        if (ci_mode()) FAIL("no go (golang-go, tools/deps.txt)");
        WARN("skipped: no go");
    } else {
        INFO("go tool pprof -raw: the listed stacks and the remainder hold the domain's exact totals");
        const std::vector<std::string> lines = pprof(*go, dir.path, {"-raw", prof});
        RawProfile raw = parse_raw_full(lines);
        REQUIRE(raw.types.size() == 8);
        std::vector<long long> sum(8, 0);
        size_t python_samples = 0;
        for (const auto& [values, ids] : raw.samples) {
            if (values.size() != 8) continue;
            if (values[4] || values[5] || values[6] || values[7]) python_samples++;
            for (size_t i = 0; i < 8; i++) sum[i] += values[i];
        }
        CHECK(raw_value(raw, sum, "python_alloc_objects/count") == domain["allocs_total"].get<long long>());
        CHECK(raw_value(raw, sum, "python_inuse_space/bytes") == final_bytes);
        CHECK(raw_value(raw, sum, "python_inuse_objects/count") == domain["allocs"].get<long long>());
        CHECK(python_samples <= 11);
        bool named = false;
        std::regex other(R"(\[([0-9]+) other Python stacks\])");
        for (const auto& l : lines) {
            std::smatch m;
            if (std::regex_search(l, m, other)) named = std::stoll(m[1]) > 1000;
        }
        CHECK(named);
    }

    {
        INFO("--plot: the Python line is the recording's, its peak marked");
        Run plot = run_memtop({memtop_path(), "report", rec, "--plot", svg}, std::chrono::seconds(120));
        INFO(plot.diag);
        REQUIRE(plot.exit_code == 0);
        const std::string text = slurp(svg);
        std::smatch m;
        REQUIRE(std::regex_search(text, m,
                                  std::regex("<polyline class=\"python\" data-pid=\"" + std::to_string(pid) +
                                             "\" data-values=\"([^\"]*)\"")));
        const std::string values = m[1];
        std::vector<long long> bytes;
        std::regex v(":([0-9]+)");
        for (auto it = std::sregex_iterator(values.begin(), values.end(), v); it != std::sregex_iterator(); ++it)
            bytes.push_back(std::stoll((*it)[1]));
        REQUIRE(bytes.size() > size_t(reports));  // samples between the reports
        CHECK(*std::max_element(bytes.begin(), bytes.end()) == top);
        CHECK(bytes.back() == final_bytes);
        CHECK(text.find("<rect class=\"peak-python\" data-pid=\"" + std::to_string(pid) + "\" data-bytes=\"" +
                        std::to_string(top) + "\"") != std::string::npos);
        // The heap's line is still there, apart.
        CHECK(text.find("<polyline class=\"heap\" data-pid=\"" + std::to_string(pid) + "\"") != std::string::npos);
        // A real consumer renders it: rsvg-convert, as the heap's plot test
        // reads it; the square's centre has the process's colour.
        REQUIRE(std::regex_search(text, m,
                                  std::regex("<rect class=\"peak-python\" data-pid=\"" + std::to_string(pid) +
                                             "\" data-bytes=\"[0-9]+\" x=\"([0-9.]+)\" y=\"([0-9.]+)\"[^>]* "
                                             "fill=\"#([0-9a-f]{6})\"")));
        const double cx = std::stod(m[1]) + 4, cy = std::stod(m[2]) + 4;
        const long color = std::stol(m[3], nullptr, 16);
        if (std::system("command -v rsvg-convert >/dev/null 2>&1") != 0) {
            if (ci_mode()) FAIL("rsvg-convert is needed (librsvg2-bin, tools/deps.txt)");
            WARN("skipped: no rsvg-convert (librsvg2-bin)");
        } else {
            const std::string png = dir.path + "/plot.png";
            Run conv = run_memtop({"rsvg-convert", "-o", png, svg});
            INFO(conv.diag);
            REQUIRE(conv.exit_code == 0);
            CHECK(conv.err_lines.empty());
            std::string error;
            auto img = read_png(png, &error);
            INFO(error);
            REQUIRE(img);
            int px[3];
            img->rgb(int(cx), int(cy), px);
            CHECK(std::abs(px[0] - int(color >> 16 & 0xff)) <= 8);
            CHECK(std::abs(px[1] - int(color >> 8 & 0xff)) <= 8);
            CHECK(std::abs(px[2] - int(color & 0xff)) <= 8);
        }
    }

    {
        INFO("--peak-python: the moment of the domain's highest, said in one line");
        Run pk = run_memtop({memtop_path(), "report", rec, "--peak-python", "--json"}, std::chrono::seconds(120));
        INFO(pk.diag);
        REQUIRE(pk.exit_code == 0);
        REQUIRE(pk.err_lines.size() == 1);
        CHECK(pk.err_lines[0].find("the peak Python domain of pid " + std::to_string(pid) +
                                   " (the highest of all processes), " + std::to_string(top) + " B") !=
              std::string::npos);
        Run none = run_memtop({memtop_path(), "report", rec, "--peak-python", "1"}, std::chrono::seconds(120));
        CHECK(none.exit_code == 2);
        REQUIRE(none.err_lines.size() == 1);
        CHECK(none.err_lines[0].find("--peak-python 1: " + rec + " holds no Python domain of pid 1") !=
              std::string::npos);
    }

    {
        INFO("--html: chromium draws the Python line beside the heap's, its peak the recording's");
        RT_REQUIRE_BROWSER();
        Run h = run_memtop({memtop_path(), "report", rec, "--html", page}, std::chrono::seconds(120));
        INFO(h.diag);
        REQUIRE(h.exit_code == 0);
        json seen = rt::look_at(page, "python-over-time", "", "app");
        INFO(seen["chart"].dump(1));
        CHECK(seen["errors"].empty());
        bool line = false, peak = false, heap = false;
        for (const auto& l : seen["chart"]["pythonLines"])
            if (l[0] == pid) line = l[1].get<long long>() > reports;
        for (const auto& pkb : seen["chart"]["peakBytes"]) {
            if (pkb[0] != pid) continue;
            if (pkb[1] == "Python") peak = pkb[2].get<long long>() == top;
            if (pkb[1] == "heap") heap = true;
        }
        CHECK(line);
        CHECK(peak);
        CHECK(heap);
    }
}

// -f: the CPython a shell runs ends before the final report (listed by an
// interval report then). The profile written at the end, and `memtop
// report`'s of the recording, have its Python stacks: the line's figures as
// the report at its end gave them.
TEST_CASE(
    "memtop -f --python-objects -- sh -c 'python3.11 py_objects.py; read x': the ended CPython in the summary's pprof",
    "[bpf][python][export][follow][record][host]") {
    RT_REQUIRE_ENV();
    if (!have_python()) return;
    TempDir dir;
    const std::string prof = dir.path + "/live.pb.gz", rec = dir.path + "/run.gz",
                      replayed = dir.path + "/replayed.pb.gz";
    Child memtop;
    std::vector<std::string> argv = memtop_base_args();
    for (const std::string& a :
         {std::string("--python-objects"), std::string("--sort"), std::string("allocated"), std::string("--pprof"),
          prof, std::string("--record"), rec, std::string("-f"), std::string("--"), std::string("/bin/sh"),
          std::string("-c"), std::string("\"$0\" \"$1\"; read x; exit 0"), kPython, progs_src("python/py_objects.py")})
        argv.push_back(a);
    start_memtop(memtop, argv, true);
    std::vector<Child*> all = {&memtop};
    wait_memtop_ready(all, memtop);
    int child = 0;
    size_t seen = 0;
    std::string last = "no report";
    auto ended = report_ended(all, memtop, seen, "python3.11", child, &last, 120);
    INFO(last.substr(0, 2000));
    REQUIRE(ended);
    CHECK_FALSE(ended->value("final", false));
    const int line = marker_line("python/py_objects.py", "py_ints");
    REQUIRE(line > 0);
    LineSum s = python_line(*ended, child, line);
    INFO(describe_python(*ended));
    REQUIRE(s.allocs_total > 0);
    memtop.close_stdin();
    Run r = stop_memtop(all, memtop, 0, std::chrono::seconds(120));
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);

    auto go = go_binary();
    if (!go) {
        if (ci_mode()) FAIL("no go (golang-go, tools/deps.txt)");
        WARN("skipped: no go");
        return;
    }
    Run rep = run_memtop({memtop_path(), "report", rec, "--json", "--pprof", replayed}, std::chrono::seconds(120));
    INFO(rep.diag);
    REQUIRE(rep.exit_code == 0);
    for (const std::string& file : {prof, replayed}) {
        INFO(file);
        RawProfile raw = parse_raw_full(pprof(*go, dir.path, {"-raw", file}));
        RawLine rl = raw_python_line(raw, line);
        CHECK(raw_value(raw, rl.sum, "python_alloc_objects/count") == s.allocs_total);
        CHECK(raw_value(raw, rl.sum, "python_alloc_space/bytes") == s.alloc_bytes_total);
    }
}
