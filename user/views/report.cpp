#include "views/report.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace memtop {

namespace {
constexpr size_t kTextProcesses = 25;  // rows of the text view's system table
}

std::vector<StackStats> top_stacks(std::vector<StackStats> stacks, size_t n) {
    std::erase_if(stacks, [](const StackStats& s) { return s.bytes <= 0 && s.allocs <= 0; });
    std::sort(stacks.begin(), stacks.end(), [](const StackStats& a, const StackStats& b) {
        if (a.bytes != b.bytes) return a.bytes > b.bytes;
        if (a.allocs != b.allocs) return a.allocs > b.allocs;
        if (a.pid != b.pid) return a.pid < b.pid;
        return a.stack_id < b.stack_id;
    });
    if (stacks.size() > n) stacks.resize(n);
    return stacks;
}

std::vector<StackStats> top_stacks(std::vector<StackStats> stacks, size_t n, std::optional<uint32_t> focus) {
    if (!focus) return top_stacks(std::move(stacks), n);
    std::vector<StackStats> mine;
    for (const auto& s : stacks)
        if (s.pid == *focus) mine.push_back(s);
    auto top = top_stacks(std::move(stacks), n);
    for (const auto& s : top_stacks(std::move(mine), n)) {
        bool there = std::any_of(top.begin(), top.end(), [&](const StackStats& t) {
            return t.pid == s.pid && t.epoch == s.epoch && t.stack_id == s.stack_id;
        });
        if (!there) top.push_back(s);
    }
    return top;
}

void order_processes(std::vector<ProcessStats>& processes) {
    std::sort(processes.begin(), processes.end(), [](const ProcessStats& a, const ProcessStats& b) {
        int64_t ra = a.rss ? a.rss->resident() : -1, rb = b.rss ? b.rss->resident() : -1;
        if (ra != rb) return ra > rb;
        if (a.heap_bytes != b.heap_bytes) return a.heap_bytes > b.heap_bytes;
        return a.pid < b.pid;
    });
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string human_bytes(int64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes < 0 ? -bytes : bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    char buf[32];
    if (u == 0)
        snprintf(buf, sizeof buf, "%s%" PRId64 " B", bytes < 0 ? "-" : "", bytes < 0 ? -bytes : bytes);
    else
        snprintf(buf, sizeof buf, "%s%.1f %s", bytes < 0 ? "-" : "", v, units[u]);
    return buf;
}

namespace {

using json = nlohmann::ordered_json;

template <typename T>
json or_null(const std::optional<T>& v) {
    return v ? json(*v) : json(nullptr);
}

json lost_json(const LostCounters& l) {
    json out = json::object();
    for (const auto& k : kLostKinds) out[k.name] = l[k.kind];
    return out;
}

std::string hex(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

json frames_json(const std::vector<Frame>& frames) {
    json out = json::array();
    for (const auto& f : frames) {
        json inl = json::array();
        for (const auto& i : f.inlined)
            inl.push_back({{"function", or_null(i.function)}, {"file", or_null(i.file)}, {"line", or_null(i.line)}});
        out.push_back({{"address", hex(f.address)},
                       {"function", or_null(f.function)},
                       {"offset", or_null(f.offset)},
                       {"module", or_null(f.module)},
                       {"file", or_null(f.file)},
                       {"line", or_null(f.line)},
                       {"inlined", std::move(inl)}});
    }
    return out;
}

json unwind_json(const UnwindSummary& u) {
    json by_module = json::array();
    for (const auto& [m, n] : u.incomplete_by_module) by_module.push_back({{"module", m}, {"stacks", n}});
    return {{"method", u.tables ? "tables" : "frame_pointers"},
            {"stacks", u.stacks},
            {"incomplete", u.incomplete},
            {"incomplete_by_module", std::move(by_module)},
            {"tables",
             {{"files", u.table_files},
              {"failed", u.table_failed},
              {"rows", u.table_rows},
              {"capacity_rows", u.table_capacity},
              {"bytes", u.table_bytes}}}};
}

}  // namespace

std::string render_json(const Report& r) {
    json procs = json::array();
    for (const auto& p : r.processes) {
        auto heap = [&](auto v) { return p.heap_traced ? json(v) : json(nullptr); };
        json e = {{"pid", p.pid},
                  {"comm", p.comm},
                  {"heap_bytes", heap(p.heap_bytes)},
                  {"heap_peak_bytes", heap(p.heap_peak_bytes)},
                  {"allocs_total", heap(p.allocs_total)},
                  {"frees_total", heap(p.frees_total)},
                  {"exited", p.exited}};
        if (p.rss) {
            e["rss_bytes"] = p.rss->resident();
            e["rss_peak_bytes"] = p.rss->peak;
            e["rss_anon_bytes"] = p.rss->anon;
            e["rss_file_bytes"] = p.rss->file;
            e["rss_shmem_bytes"] = p.rss->shmem;
            e["swap_bytes"] = p.rss->swap;
            e["growth_bytes"] = p.growth_bytes;
            e["growth_bytes_per_sec"] = static_cast<int64_t>(p.growth_rate);
            e["growing"] = p.growing;
        }
        if (p.mapped_known) {
            e["mapped_bytes"] = p.mapped_bytes;
            e["mapped_peak_bytes"] = p.mapped_peak_bytes;
        }
        if (p.has_identity) {
            e["cgroup"] = p.cgroup;
            e["container"] = p.container ? json(*p.container) : json(nullptr);
            e["nspid"] = p.nspid;
        }
        procs.push_back(std::move(e));
    }
    auto stack_list = [](const std::vector<ReportStack>& list) {
        json out = json::array();
        for (const auto& s : list)
            out.push_back({{"pid", s.stats.pid},
                           {"bytes", s.stats.bytes},
                           {"samples", s.stats.allocs},
                           {"complete", s.complete},
                           {"frames", frames_json(s.frames)}});
        return out;
    };
    // Heap stacks and mapping stacks: outstanding bytes and counts
    // (mappings count as allocations).
    auto outstanding_list = [](const std::vector<ReportStack>& list) {
        json out = json::array();
        for (const auto& s : list)
            out.push_back({{"pid", s.stats.pid},
                           {"bytes", s.stats.bytes},
                           {"allocs", s.stats.allocs},
                           {"alloc_bytes_total", s.stats.alloc_bytes_total},
                           {"allocs_total", s.stats.allocs_total},
                           {"truncated", s.truncated},
                           {"complete", s.complete},
                           {"frames", frames_json(s.frames)}});
        return out;
    };
    json j = {{"type", "report"},
              {"time", rfc3339(r.time)},
              {"final", r.final},
              {"processes", std::move(procs)},
              {"stacks", outstanding_list(r.stacks)},
              {"growth_stacks", stack_list(r.growth_stacks)},
              {"mappings", outstanding_list(r.mappings)},
              {"lost", lost_json(r.lost)},
              {"unwind", unwind_json(r.unwind)},
              {"self",
               {{"rss_bytes", r.self.rss_bytes},
                {"cpu_seconds", r.self.cpu_seconds},
                {"cpu_percent", r.self.cpu_percent},
                {"probes", r.self.probes},
                {"kernel_bytes", r.self.kernel_bytes}}}};
    if (r.lines) {
        json lines = json::array();
        for (const auto& l : r.lines->lines)
            lines.push_back({{"line", l.line},
                             {"function", l.function},
                             {"bytes", l.bytes},
                             {"allocs", l.allocs},
                             {"alloc_bytes_total", l.alloc_bytes_total},
                             {"allocs_total", l.allocs_total}});
        j["lines"] = {{"file", r.lines->file},
                      {"matched", r.lines->matched.empty() ? json(nullptr) : json(r.lines->matched)},
                      {"lines", std::move(lines)}};
    }
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {
std::string render_frames(const std::vector<Frame>& frames) {
    std::string out;
    char line[512];
    for (const auto& f : frames) {
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
std::string render_lines(const LineReport& lr) {
    std::string out = "\nLines of " + lr.file;
    if (lr.matched.empty()) return out + ": no allocation passed through it\n";
    out += " (" + lr.matched + "):\n";
    std::vector<std::string> source;
    {
        std::ifstream in(lr.matched);
        for (std::string l; std::getline(in, l);) source.push_back(l);
    }
    char line[512];
    snprintf(line, sizeof line, "%6s %12s %12s %10s  %s\n", "LINE", "OUTSTANDING", "ALLOCATED", "ALLOCS", "SOURCE");
    out += line;
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
                     p.container ? p.container->substr(0, 12).c_str() : "", p.exited ? "  (exited)" : "");
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
                     p.mapped_known ? human_bytes(p.mapped_bytes).c_str() : "-", p.exited ? "  (exited)" : "");
            out += line;
        }
    }
    if (!r.stacks.empty()) out += "\nTop stacks by outstanding bytes:\n";
    int rank = 1;
    for (const auto& s : r.stacks) {
        snprintf(line, sizeof line,
                 "#%d  pid %u: %s outstanding in %" PRId64 " allocation%s (%s in %" PRIu64 " in all)%s\n", rank++,
                 s.stats.pid, human_bytes(s.stats.bytes).c_str(), s.stats.allocs, s.stats.allocs == 1 ? "" : "s",
                 human_bytes(static_cast<int64_t>(s.stats.alloc_bytes_total)).c_str(), s.stats.allocs_total,
                 s.truncated                       ? " [truncated]"
                 : !s.complete && s.stats.stack_id ? " [incomplete]"
                                                   : "");
        out += line;
        if (s.stats.stack_id == 0) out += "      (stack not stored: the stack map was full)\n";
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
    if (r.lines) out += render_lines(*r.lines);
    std::string lost;
    for (const auto& k : kLostKinds) {
        if (!r.lost[k.kind]) continue;
        if (!lost.empty()) lost += ", ";
        lost += std::string(k.text) + " " + std::to_string(r.lost[k.kind]);
    }
    out += "\nlost: " + (lost.empty() ? std::string("nothing") : lost) + "\n";
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
             "memtop itself: %s resident, %s of BPF maps in the kernel, %.1f%% of a core, %zu probes",
             human_bytes(r.self.rss_bytes).c_str(), human_bytes(static_cast<int64_t>(r.self.kernel_bytes)).c_str(),
             r.self.cpu_percent, r.self.probes);
    out += line;
    if (u.tables) {
        snprintf(line, sizeof line, ", unwind tables for %zu files (%s of %s in the kernel)", u.table_files,
                 human_bytes(int64_t(u.table_rows * 8)).c_str(), human_bytes(int64_t(u.table_bytes)).c_str());
        out += line;
    }
    out += "\n";
    return out;
}

}  // namespace memtop
