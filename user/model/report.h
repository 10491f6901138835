// One report: what aggregation builds from a kernel snapshot, symbolization
// names, and every view (text, JSON, the live screen) shows.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/frame.h"
#include "model/host.h"
#include "model/lost.h"
#include "model/process.h"
#include "model/stack.h"

namespace memtop {

struct ReportStack {
    StackStats stats;
    std::vector<uint64_t> ips;    // as stored; empty for stack id 0
    std::vector<Frame> frames;    // ips named (symbolize/); frames[0]: the code that called the allocator
    bool truncated = false;       // deeper than memtop keeps
    bool complete = false;        // reaches the outermost frame (_start, a thread start)
    std::vector<AgeBucket> ages;  // --min-age: outstanding blocks by age (kAgeBounds), else empty
    // The outstanding blocks' real footprint under glibc's malloc (chunk
    // headers and rounding, model/footprint.h): set when every allocator
    // memtop probes is glibc's and the live blocks were read (the final
    // report, --min-age). An estimate under --sample.
    std::optional<int64_t> used_bytes;
};

// Stacks a list leaves out (Report::python_rest): their count, and their
// numbers summed in stats (pid and epoch theirs, stack_id 0).
struct StackRemainder {
    uint64_t stacks = 0;
    StackStats stats;
};

// memtop's own cost, shown in every report.
struct SelfStats {
    int64_t rss_bytes = 0;
    // Of it, anonymous memory (RssAnon): the rest is memtop's files mapped
    // (its binary, libraries: page cache the kernel can drop and share).
    int64_t rss_anon_bytes = 0;
    double cpu_seconds = 0;       // user + system since memtop started
    double cpu_percent = 0;       // of one core, over the last interval
    size_t probes = 0;            // uprobes attached (entry and return)
    uint64_t kernel_bytes = 0;    // memtop's BPF maps in kernel memory
    size_t python_processes = 0;  // live CPython processes getting Python frames (the kernel's py_procs)
};

// How whole the stacks are: a user's reason to trust a stack, or not.
struct UnwindSummary {
    bool tables = false;      // unwound with tables (else frame pointers only)
    uint64_t stacks = 0;      // distinct stacks of the reported processes
    uint64_t incomplete = 0;  // of them, not reaching _start or a thread's start
    // Incomplete stacks by the module of their last frame: where the walk
    // stopped, so where frame pointers or unwind information are missing.
    // Filled by symbolization from `incomplete_ends` (pid, last address).
    std::map<std::string, uint64_t> incomplete_by_module;
    std::vector<std::pair<uint32_t, uint64_t>> incomplete_ends;
    size_t table_files = 0, table_rows = 0, table_capacity = 0, table_failed = 0;
    size_t table_bytes = 0;  // kernel memory of the rows array
};

// `--lines FILE`: what each line of one source file allocated.
struct LineStats {
    int line = 0;
    std::string function;  // the function the line is in (innermost, inlined included)
    int64_t bytes = 0;     // outstanding
    int64_t allocs = 0;    // outstanding
    uint64_t alloc_bytes_total = 0;
    uint64_t allocs_total = 0;
};

struct LineReport {
    std::string file;              // as asked
    std::string matched;           // the DWARF path that matched, "" if none did
    std::vector<LineStats> lines;  // sorted by line
};

// A perf map memtop read, or refused, to name a process's JIT frames. The
// traced process (or anyone who can write its /tmp) controls that file, so
// what memtop did not use of it is said, never dropped silently.
struct PerfMapNote {
    uint32_t pid = 0;
    std::string file;                // as the process sees it: /tmp/perf-NSPID.map
    std::string rejected;            // why nothing of it is used; "" when it is read
    uint64_t lines_used = 0;         // entries that name code
    uint64_t lines_malformed = 0;    // skipped: not "START SIZE NAME"
    uint64_t lines_absurd = 0;       // skipped: a size of 0 or over 1 GiB, or past user space
    uint64_t lines_overlapping = 0;  // overlapped earlier entries (the later line names the code)
    uint64_t bytes_unread = 0;       // past the most memtop reads of a map (64 MiB)
};

// A file of a traced process that frames were looked up in but whose
// symbols or DWARF (or the whole of it) memtop could not read: frames in it
// stay unnamed, or without file:line, and the report says which file.
struct SymbolFileNote {
    std::string file;     // as the process maps it
    std::string problem;  // what could not be read, and libelf/libdw's reason
};

struct Report {
    std::chrono::system_clock::time_point time;
    bool final = false;
    // The text view prints each --lines line's source text from
    // lines->matched; a report read from a recording names a path of the
    // host that recorded it, read here only with `memtop report
    // --local-sources`. Not recorded.
    bool read_line_sources = true;
    // --sample: mean bytes between heap samples; 0 exact. When set, every heap
    // figure (processes' heap, peak and counts, every heap stack, --lines)
    // is an estimate (model/sampling.h).
    uint64_t sample_bytes = 0;
    SelfStats self;
    std::optional<MemInfo> host;  // the host's memory (/proc/meminfo)
    std::vector<ProcessStats> processes;
    std::vector<ReportStack> stacks;  // heap: the top stacks in stack_order (outstanding bytes by default)
    StackOrder stack_order = StackOrder::Outstanding;
    std::optional<double> min_age;           // --min-age: heap stacks count only blocks at least this old (seconds)
    std::vector<ReportStack> growth_stacks;  // estimated resident bytes first touched per stack (page faults)
    std::vector<ReportStack> mappings;       // anonymous mmap/brk bytes still mapped, per stack
    // Python's object-allocator domain (pymalloc's blocks, apart from the
    // heap): the top stacks by outstanding bytes, and the inlined pymalloc
    // sites probed and skipped (attach/pymalloc_sites.h).
    std::vector<ReportStack> python_stacks;
    size_t python_sites = 0, python_sites_skipped = 0;
    bool python_sampled = false;  // some process's objects were sampled in-process: its figures are estimates
    // The Python-domain stacks of the file exports (--pprof, --folded,
    // --html), when all_stacks is filled: in the final report, the top
    // -T of the reported processes in the report's order (--sort); in an
    // earlier one, of the processes that ended (for the run's summary,
    // aggregate/ended_targets.h); never
    // focused (fewer with bytes outstanding than -T: the most allocated
    // after them), and python_rest, what they leave out. Not every stack, as
    // the heap's all_stacks: an exactly counted CPython's start-up alone
    // has some 18,000, each ~55 frames (a 259 MB report). An earlier report
    // (a recording's --at) has its top python_stacks only.
    std::vector<ReportStack> all_python_stacks;
    // Per process instance, the Python-domain stacks all_python_stacks
    // leaves out: how many, and their numbers summed (stats.stack_id 0), so
    // that the listed stacks and these add up to the domain's totals.
    std::vector<StackRemainder> python_rest;
    LostCounters lost;
    UnwindSummary unwind;
    std::optional<LineReport> lines;  // --lines FILE
    // The perf maps of the reported processes that memtop found (read,
    // refused or read in part), by pid; filled by symbolization.
    std::vector<PerfMapNote> perf_maps;
    // Files whose symbols or DWARF could not be read, among those the
    // report's frames are in; filled by symbolization.
    std::vector<SymbolFileNote> symbol_files;
    // Python frames not shown: a CPython version memtop has no layout for,
    // code objects unread because the process ended; filled by symbolization.
    std::vector<std::string> python_notes;
    // --lines: every heap stack of the reported processes, named so the
    // listing can sum them; consumed by symbolization, never shown.
    std::vector<ReportStack> line_stacks;
    // Every heap stack of the reported processes, freed ones included (an
    // allocation profile needs them): filled in the final report only, when
    // a file export (--pprof, --folded) asks for it.
    std::vector<ReportStack> all_stacks;
};

// The Python-domain stacks a file export or a diff holds: all_python_stacks
// and, for each python_rest, the stack `rest_stack` makes of it. A report
// before the final one lists those of its ended processes only: the other
// processes' top python_stacks come with them.
template <class RestStack>
std::vector<ReportStack> python_profile_stacks(const Report& r, RestStack rest_stack) {
    if (r.all_python_stacks.empty() && r.python_rest.empty()) return r.python_stacks;
    std::vector<ReportStack> out = r.all_python_stacks;
    for (const auto& rest : r.python_rest) out.push_back(rest_stack(rest));
    if (!r.final) {
        std::set<std::pair<uint32_t, uint32_t>> listed;
        for (const auto& s : out) listed.insert({s.stats.pid, s.stats.epoch});
        for (const auto& s : r.python_stacks)
            if (!listed.count({s.stats.pid, s.stats.epoch})) out.push_back(s);
    }
    return out;
}

}  // namespace memtop
