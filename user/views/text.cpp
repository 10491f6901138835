#include "views/text.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "model/footprint.h"
#include "views/format.h"

namespace memtop {

namespace {

// An ended process's row; "earlier": the final report lists again a process
// an earlier report showed ending (aggregate/ended_targets.h).
const char* exited_note(const ProcessStats& p) {
    return !p.exited ? "" : p.reported_before ? "  (exited earlier)" : "  (exited)";
}

// Bytes per block, as a figure to compare stacks by, exact below 1 MiB
// (1024 and 1040 must not both read "1.0 KiB"): "28 B", "56.5 B", "1.5 MiB".
std::string per_block(double b) {
    char buf[32];
    if (b >= 1024 * 1024) return human_bytes(std::llround(b));
    if (b == std::floor(b))
        snprintf(buf, sizeof buf, "%.0f B", b);
    else
        snprintf(buf, sizeof buf, "%.1f B", b);
    return buf;
}

// A heap stack's size per block (the __slots__ question: what does one
// object of this line cost?), and under glibc what each really uses
// (model/footprint.h), with a note when header and rounding are a large
// share of many small blocks.
std::string per_block_line(const ReportStack& s) {
    std::string out;
    if (s.stats.allocs > 0) {
        out = "      per block: " + per_block(bytes_per_block(s.stats.bytes, s.stats.allocs)) + " requested";
        if (s.used_bytes && *s.used_bytes > 0) {
            int64_t overhead = *s.used_bytes - s.stats.bytes;
            double share = static_cast<double>(overhead) / static_cast<double>(*s.used_bytes);
            char b[160];
            snprintf(b, sizeof b, ", %s used under glibc (%s in all, %.*f%% chunk header and rounding)",
                     per_block(bytes_per_block(*s.used_bytes, s.stats.allocs)).c_str(),
                     human_bytes(*s.used_bytes).c_str(), share < 0.1 ? 1 : 0, 100 * share);
            out += b;
            out += "\n";
            if (share >= kOverheadNoteShare && s.stats.allocs >= kOverheadNoteBlocks)
                out +=
                    "      note: many small blocks; glibc's 8-byte header and 16-byte rounding are a large share "
                    "(one array or a pool of them would save it)\n";
            return out;
        }
        return out + "\n";
    }
    if (s.stats.allocs_total > 0)
        out = "      per block: " +
              per_block(bytes_per_block(static_cast<int64_t>(s.stats.alloc_bytes_total),
                                        static_cast<int64_t>(s.stats.allocs_total))) +
              " requested, in all\n";
    return out;
}
constexpr size_t kTextProcesses = 25;  // rows of the text view's system table
}  // namespace

namespace {
// "perf map /tmp/perf-12.map (pid 12): rejected: a symlink (not followed)",
// or what of a map was not used; "" for a map wholly used.
std::string perf_map_line(const PerfMapNote& n) {
    std::string what;
    auto add = [&](uint64_t count, const char* text) {
        if (!count) return;
        what += (what.empty() ? "" : ", ") + std::to_string(count) + text;
    };
    if (!n.rejected.empty()) {
        what = "rejected: " + n.rejected;
    } else {
        add(n.lines_malformed, " lines skipped as malformed");
        add(n.lines_absurd, " skipped as absurd (size 0 or over 1 GiB, or past user space)");
        add(n.lines_overlapping, " overlapping earlier ones (the later names the code)");
        if (n.bytes_unread)
            what += (what.empty() ? "" : ", ") + human_bytes(int64_t(n.bytes_unread)) + " past 64 MiB not read";
    }
    if (what.empty()) return "";
    return "perf map " + n.file + " (pid " + std::to_string(n.pid) + "): " + what + "\n";
}

std::string render_frames(const std::vector<Frame>& frames) {
    std::string out;
    char line[512];
    for (const auto& f : frames) {
        if (f.kind == FrameKind::Python) {
            // `function (file.py:line)`, in the column of function names.
            std::string src = f.file ? std::filesystem::path(*f.file).filename().string() : "?";
            if (f.line) src += ":" + std::to_string(*f.line);
            snprintf(line, sizeof line, "      %-16s %s (%s)\n", "", f.function ? f.function->c_str() : "??",
                     src.c_str());
            out += line;
            continue;
        }
        std::string where = f.function ? *f.function : "??";
        if (f.function && f.offset) {
            snprintf(line, sizeof line, "+0x%" PRIx64, *f.offset);
            where += line;
        }
        std::string mod = f.module ? std::filesystem::path(*f.module).filename().string() : "?";
        std::string src;
        if (f.file)
            src = "  " + std::filesystem::path(*f.file).filename().string() +
                  (f.line ? ":" + std::to_string(*f.line) : "");
        // Functions inlined here, innermost first, above the one they are in.
        for (const auto& i : f.inlined) {
            std::string isrc = i.file ? "  " + std::filesystem::path(*i.file).filename().string() +
                                            (i.line ? ":" + std::to_string(*i.line) : "")
                                      : "";
            snprintf(line, sizeof line, "      %-16s %s (inlined)%s\n", "", i.function ? i.function->c_str() : "??",
                     isrc.c_str());
            out += line;
        }
        snprintf(line, sizeof line, "      0x%-14" PRIx64 " %s (%s)%s\n", f.address, where.c_str(), mod.c_str(),
                 src.c_str());
        out += line;
    }
    return out;
}
// The annotated listing: each line of the file that allocated, with its
// source text when the file is readable here.
std::string render_lines(const LineReport& lr, bool read_source) {
    std::string out = "\nLines of " + lr.file;
    if (lr.matched.empty()) return out + ": no allocation passed through it\n";
    out += " (" + lr.matched + "):\n";
    std::vector<std::string> source;
    if (read_source) {
        std::ifstream in(lr.matched);
        for (std::string l; std::getline(in, l);) source.push_back(l);
    } else {
        out +=
            "(source text not read: the path is the recording host's; memtop report --local-sources reads it "
            "here)\n";
    }
    char line[512];
    snprintf(line, sizeof line, "%6s %12s %12s %10s  %s\n", "LINE", "OUTSTANDING", "ALLOCATED", "ALLOCS", "SOURCE");
    out += line;
    // A Python file is listed whole, each line with its text, as
    // memory_profiler lists a function: the lines that allocated nothing
    // give the others their place.
    bool python = lr.matched.size() > 3 && lr.matched.compare(lr.matched.size() - 3, 3, ".py") == 0;
    if (python && !source.empty()) {
        auto it = lr.lines.begin();
        for (int n = 1; n <= int(source.size()); n++) {
            while (it != lr.lines.end() && it->line < n) ++it;
            std::string text = source[n - 1];
            if (text.size() > 80) text = text.substr(0, 77) + "...";
            if (it != lr.lines.end() && it->line == n)
                snprintf(line, sizeof line, "%6d %12s %12s %10" PRIu64 "  %s\n", n, human_bytes(it->bytes).c_str(),
                         human_bytes(int64_t(it->alloc_bytes_total)).c_str(), it->allocs_total, text.c_str());
            else
                snprintf(line, sizeof line, "%6d %12s %12s %10s  %s\n", n, "", "", "", text.c_str());
            out += line;
        }
        return out;
    }
    for (const auto& l : lr.lines) {
        std::string text = l.line >= 1 && size_t(l.line) <= source.size() ? source[l.line - 1] : "(" + l.function + ")";
        size_t b = text.find_first_not_of(" \t");
        text = b == std::string::npos ? "" : text.substr(b);
        if (text.size() > 80) text = text.substr(0, 77) + "...";
        snprintf(line, sizeof line, "%6d %12s %12s %10" PRIu64 "  %s\n", l.line, human_bytes(l.bytes).c_str(),
                 human_bytes(int64_t(l.alloc_bytes_total)).c_str(), l.allocs_total, text.c_str());
        out += line;
    }
    return out;
}

}  // namespace

std::string render_text(const Report& r) {
    std::string out;
    char line[512];
    snprintf(line, sizeof line, "memtop %s%s\n", rfc3339(r.time).c_str(), r.final ? "  (final)" : "");
    out += line;
    if (r.sample_bytes) {
        snprintf(
            line, sizeof line, "heap figures are ESTIMATES: allocations sampled every %s on average (--sample %llu)\n",
            human_bytes(static_cast<int64_t>(r.sample_bytes)).c_str(), static_cast<unsigned long long>(r.sample_bytes));
        out += line;
    }
    // The system table when some processes are not heap-traced (the system
    // view); with a target every row is traced and gets the heap table,
    // plus its resident memory.
    bool system = std::any_of(r.processes.begin(), r.processes.end(),
                              [](const ProcessStats& p) { return p.rss && !p.heap_traced; });
    if (system) {
        snprintf(line, sizeof line, "%8s  %-16s %10s %10s %10s %10s %10s %9s %10s %10s %10s  %s\n", "PID", "COMM",
                 "RSS", "RSS PEAK", "ANON", "FILE", "SHMEM", "SWAP", "GROWTH", "MAPPED", "HEAP", "CONTAINER");
        out += line;
        size_t shown = 0;
        for (const auto& p : r.processes) {
            if (!p.rss) continue;
            if (++shown > kTextProcesses) {
                snprintf(line, sizeof line, "   ... %zu more (--json lists all)\n",
                         r.processes.size() - kTextProcesses);
                out += line;
                break;
            }
            std::string growth = (p.growth_bytes > 0 ? "+" : "") + human_bytes(p.growth_bytes);
            snprintf(line, sizeof line, "%8u  %-16s %10s %10s %10s %10s %10s %9s %10s%s %10s %10s  %s%s\n", p.pid,
                     p.comm.c_str(), human_bytes(p.rss->resident()).c_str(), human_bytes(p.rss->peak).c_str(),
                     human_bytes(p.rss->anon).c_str(), human_bytes(p.rss->file).c_str(),
                     human_bytes(p.rss->shmem).c_str(), human_bytes(p.rss->swap).c_str(), growth.c_str(),
                     p.growing ? "^" : " ", p.mapped_known ? human_bytes(p.mapped_bytes).c_str() : "-",
                     p.heap_traced ? human_bytes(p.heap_bytes).c_str() : "-",
                     p.container ? p.container->substr(0, 12).c_str() : "", exited_note(p));
            out += line;
        }
    } else {
        snprintf(line, sizeof line, "%8s  %-16s %12s %12s %12s %12s %10s %10s %10s\n", "PID", "COMM", "HEAP", "PEAK",
                 "ALLOCS", "FREES", "RSS", "RSS PEAK", "MAPPED");
        out += line;
        for (const auto& p : r.processes) {
            snprintf(line, sizeof line, "%8u  %-16s %12s %12s %12" PRIu64 " %12" PRIu64 " %10s %10s %10s%s\n", p.pid,
                     p.comm.c_str(), human_bytes(p.heap_bytes).c_str(), human_bytes(p.heap_peak_bytes).c_str(),
                     p.allocs_total, p.frees_total, p.rss ? human_bytes(p.rss->resident()).c_str() : "-",
                     p.rss ? human_bytes(p.rss->peak).c_str() : "-",
                     p.mapped_known ? human_bytes(p.mapped_bytes).c_str() : "-", exited_note(p));
            out += line;
        }
    }
    if (!r.stacks.empty()) {
        out += std::string("\nTop stacks by ") + stack_order_info(r.stack_order).ranks_by + ":\n";
        if (r.min_age) {
            snprintf(line, sizeof line, "(outstanding: blocks at least %gs old only, --min-age)\n", *r.min_age);
            out += line;
        }
    }
    int rank = 1;
    for (const auto& s : r.stacks) {
        std::string temp;
        if (s.stats.temp_allocs)
            temp = ", " + std::to_string(s.stats.temp_allocs) + " temporary (" +
                   human_bytes(static_cast<int64_t>(s.stats.temp_bytes)) + ")";
        snprintf(line, sizeof line,
                 "#%d  pid %u: %s outstanding in %" PRId64 " allocation%s (%s in %" PRIu64 " in all%s)%s\n", rank++,
                 s.stats.pid, human_bytes(s.stats.bytes).c_str(), s.stats.allocs, s.stats.allocs == 1 ? "" : "s",
                 human_bytes(static_cast<int64_t>(s.stats.alloc_bytes_total)).c_str(), s.stats.allocs_total,
                 temp.c_str(),
                 s.truncated                       ? " [truncated]"
                 : !s.complete && s.stats.stack_id ? " [incomplete]"
                                                   : "");
        out += line;
        if (s.stats.stack_id == 0) out += "      (stack not stored: the stack map was full)\n";
        out += per_block_line(s);
        if (!s.ages.empty()) {
            std::string ages = "      ages:";
            for (const auto& a : s.ages) {
                if (!a.allocs) continue;
                char b[96];
                if (a.max_seconds < 0)
                    snprintf(b, sizeof b, " older %s (%" PRIu64 ")", human_bytes(int64_t(a.bytes)).c_str(), a.allocs);
                else
                    snprintf(b, sizeof b, " <%gs %s (%" PRIu64 ")", a.max_seconds,
                             human_bytes(int64_t(a.bytes)).c_str(), a.allocs);
                ages += b;
            }
            out += ages + "\n";
        }
        out += render_frames(s.frames);
    }
    if (!r.growth_stacks.empty()) out += "\nTop stacks by resident memory first touched (page faults, sampled):\n";
    rank = 1;
    for (const auto& s : r.growth_stacks) {
        snprintf(line, sizeof line, "#%d  pid %u: ~%s in %" PRId64 " sample%s%s\n", rank++, s.stats.pid,
                 human_bytes(s.stats.bytes).c_str(), s.stats.allocs, s.stats.allocs == 1 ? "" : "s",
                 !s.complete && s.stats.stack_id ? " [incomplete]" : "");
        out += line;
        out += render_frames(s.frames);
    }
    if (!r.mappings.empty()) out += "\nTop stacks by anonymous memory still mapped (mmap, mremap, brk):\n";
    rank = 1;
    for (const auto& s : r.mappings) {
        snprintf(line, sizeof line, "#%d  pid %u: %s in %" PRId64 " mapping%s (%s in %" PRIu64 " made)%s\n", rank++,
                 s.stats.pid, human_bytes(s.stats.bytes).c_str(), s.stats.allocs, s.stats.allocs == 1 ? "" : "s",
                 human_bytes(static_cast<int64_t>(s.stats.alloc_bytes_total)).c_str(), s.stats.allocs_total,
                 !s.complete && s.stats.stack_id ? " [incomplete]" : "");
        out += line;
        out += render_frames(s.frames);
    }
    // Python's object allocator, apart from the heap above (pymalloc's
    // blocks of 1..512 bytes; larger ones are malloc's, in the heap).
    for (const auto& p : r.processes) {
        if (!p.py_allocs_total && !p.py_frees_total) continue;
        snprintf(line, sizeof line,
                 "\npython domain (pymalloc, not in HEAP%s): pid %u: %s outstanding in %" PRId64
                 " objects, peak %s, %" PRIu64 " allocated, %" PRIu64 " freed\n",
                 p.py_sampled ? "; ESTIMATES, sampled" : "", p.pid, human_bytes(p.py_bytes).c_str(),
                 static_cast<int64_t>(p.py_allocs_total - p.py_frees_total), human_bytes(p.py_peak_bytes).c_str(),
                 p.py_allocs_total, p.py_frees_total);
        out += line;
    }
    if (r.python_sites_skipped)
        out += "python domain: " + std::to_string(r.python_sites_skipped) + " of " +
               std::to_string(r.python_sites + r.python_sites_skipped) + " inlined pymalloc sites not probed\n";
    if (!r.python_stacks.empty())
        out += std::string("\nTop stacks of the Python domain (pymalloc objects outstanding") +
               (r.python_sampled ? "; ESTIMATES" : "") + "):\n";
    rank = 1;
    for (const auto& s : r.python_stacks) {
        snprintf(line, sizeof line,
                 "#%d  pid %u: %s outstanding in %" PRId64 " object%s (%s in %" PRIu64 " in all)%s\n", rank++,
                 s.stats.pid, human_bytes(s.stats.bytes).c_str(), s.stats.allocs, s.stats.allocs == 1 ? "" : "s",
                 human_bytes(static_cast<int64_t>(s.stats.alloc_bytes_total)).c_str(), s.stats.allocs_total,
                 !s.complete && s.stats.stack_id ? " [incomplete]" : "");
        out += line;
        out += per_block_line(s);
        out += render_frames(s.frames);
    }
    if (r.lines) out += render_lines(*r.lines, r.read_line_sources);
    std::string lost;
    for (const auto& k : kLostKinds) {
        if (!r.lost[k.kind]) continue;
        if (!lost.empty()) lost += ", ";
        lost += std::string(k.text) + " " + std::to_string(r.lost[k.kind]);
    }
    out += "\nlost: " + (lost.empty() ? std::string("nothing") : lost) + "\n";
    for (const auto& n : r.perf_maps) out += perf_map_line(n);
    for (const auto& n : r.symbol_files) out += "symbols of " + n.file + ": " + n.problem + "\n";
    for (const auto& n : r.python_notes) out += "python: " + n + "\n";
    const auto& u = r.unwind;
    if (u.stacks) {
        snprintf(line, sizeof line, "stacks: %" PRIu64 ", incomplete %" PRIu64 " (%.1f%%)", u.stacks, u.incomplete,
                 100.0 * double(u.incomplete) / double(u.stacks));
        out += line;
        if (!u.tables) out += ", frame pointers only";
        std::string where;
        for (const auto& [m, n] : u.incomplete_by_module)
            where +=
                (where.empty() ? "" : ", ") + std::filesystem::path(m).filename().string() + " " + std::to_string(n);
        if (!where.empty()) out += "; stopped in " + where;
        out += "\n";
    }
    snprintf(line, sizeof line,
             "memtop itself: %s resident (%s anonymous), %s of BPF maps in the kernel, %.1f%% of a core, %zu probes",
             human_bytes(r.self.rss_bytes).c_str(), human_bytes(r.self.rss_anon_bytes).c_str(),
             human_bytes(static_cast<int64_t>(r.self.kernel_bytes)).c_str(), r.self.cpu_percent, r.self.probes);
    out += line;
    if (r.self.python_processes) out += ", Python frames in " + std::to_string(r.self.python_processes) + " processes";
    if (u.tables) {
        snprintf(line, sizeof line, ", unwind tables for %zu files (%s of %s in the kernel)", u.table_files,
                 human_bytes(int64_t(u.table_rows * 8)).c_str(), human_bytes(int64_t(u.table_bytes)).c_str());
        out += line;
    }
    out += "\n";
    return out;
}

}  // namespace memtop
