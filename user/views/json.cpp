#include "views/json.h"

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "model/footprint.h"
#include "views/format.h"

namespace memtop {

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
        out.push_back({{"kind", frame_kind_name(f.kind)},
                       {"address", hex(f.address)},
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

json symbol_files_json(const std::vector<SymbolFileNote>& notes) {
    json out = json::array();
    for (const auto& n : notes) out.push_back({{"file", n.file}, {"problem", n.problem}});
    return out;
}

json perf_maps_json(const std::vector<PerfMapNote>& notes) {
    json out = json::array();
    for (const auto& n : notes)
        out.push_back({{"pid", n.pid},
                       {"file", n.file},
                       {"rejected", n.rejected.empty() ? json(nullptr) : json(n.rejected)},
                       {"lines_used", n.lines_used},
                       {"lines_malformed", n.lines_malformed},
                       {"lines_absurd", n.lines_absurd},
                       {"lines_overlapping", n.lines_overlapping},
                       {"bytes_unread", n.bytes_unread}});
    return out;
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
        // Listed again by the final report: an earlier report had these numbers.
        if (p.reported_before) e["reported_before"] = true;
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
        // Python's object allocator, apart from the heap (docs/json.md).
        if (p.py_allocs_total || p.py_frees_total)
            e["python"] = {{"domain", "pymalloc"},
                           {"bytes", p.py_bytes},
                           {"peak_bytes", p.py_peak_bytes},
                           {"allocs", static_cast<int64_t>(p.py_allocs_total - p.py_frees_total)},
                           {"allocs_total", p.py_allocs_total},
                           {"frees_total", p.py_frees_total},
                           {"estimates", p.py_sampled}};
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
    auto outstanding_list = [](const std::vector<ReportStack>& list, bool heap) {
        json out = json::array();
        for (const auto& s : list) {
            json j = {{"pid", s.stats.pid},
                      {"bytes", s.stats.bytes},
                      {"allocs", s.stats.allocs},
                      {"alloc_bytes_total", s.stats.alloc_bytes_total},
                      {"allocs_total", s.stats.allocs_total}};
            if (heap) {
                j["temporary_allocs"] = s.stats.temp_allocs;
                j["temporary_bytes"] = s.stats.temp_bytes;
                // Per block: outstanding bytes over outstanding blocks, and
                // glibc's real footprint of them (null when unknown).
                j["bytes_per_alloc"] =
                    s.stats.allocs > 0 ? json(bytes_per_block(s.stats.bytes, s.stats.allocs)) : json(nullptr);
                j["used_bytes"] = s.used_bytes ? json(*s.used_bytes) : json(nullptr);
            }
            if (!s.ages.empty()) {
                json ages = json::array();
                for (const auto& a : s.ages)
                    ages.push_back({{"max_seconds", a.max_seconds < 0 ? json(nullptr) : json(a.max_seconds)},
                                    {"bytes", a.bytes},
                                    {"allocs", a.allocs}});
                j["ages"] = std::move(ages);
            }
            j["truncated"] = s.truncated;
            j["complete"] = s.complete;
            j["frames"] = frames_json(s.frames);
            out.push_back(std::move(j));
        }
        return out;
    };
    json j = {{"type", "report"},
              {"time", rfc3339(r.time)},
              {"final", r.final},
              {"processes", std::move(procs)},
              {"stacks", outstanding_list(r.stacks, true)},
              {"stack_order", stack_order_name(r.stack_order)},
              {"min_age_seconds", r.min_age ? json(*r.min_age) : json(nullptr)},
              {"growth_stacks", stack_list(r.growth_stacks)},
              {"mappings", outstanding_list(r.mappings, false)},
              {"python",
               {{"domain", "pymalloc"},
                {"sites", r.python_sites},
                {"sites_skipped", r.python_sites_skipped},
                {"estimates", r.python_sampled},
                {"stacks", outstanding_list(r.python_stacks, false)}}},
              {"lost", lost_json(r.lost)},
              {"unwind", unwind_json(r.unwind)},
              {"perf_maps", perf_maps_json(r.perf_maps)},
              {"symbol_files", symbol_files_json(r.symbol_files)},
              {"python_notes", r.python_notes},
              {"self",
               {{"rss_bytes", r.self.rss_bytes},
                {"rss_anon_bytes", r.self.rss_anon_bytes},
                {"cpu_seconds", r.self.cpu_seconds},
                {"cpu_percent", r.self.cpu_percent},
                {"probes", r.self.probes},
                {"kernel_bytes", r.self.kernel_bytes},
                {"python_processes", r.self.python_processes}}}};
    // --sample: every heap figure is an estimate (docs/json.md, "Sampling").
    if (r.sample_bytes) j["sampling"] = {{"bytes", r.sample_bytes}, {"estimates", "heap"}};
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

}  // namespace memtop
