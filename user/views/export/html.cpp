#include "views/export/html.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <tuple>

#include "views/format.h"
#include "views/json.h"

namespace memtop {

// The page (html_report.html), a string made at build time (CMakeLists.txt).
extern const char* const kHtmlReportTemplate;

namespace {

using json = nlohmann::json;

int64_t ns_of(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// A frame without a name, as the folded export writes it.
std::string unnamed(const Frame& f) {
    char buf[48];
    if (f.module && f.mapping) {
        std::string base = f.module->substr(f.module->rfind('/') + 1);
        snprintf(buf, sizeof buf, "+0x%" PRIx64, f.address - f.mapping->start + f.mapping->offset);
        return base + buf;
    }
    snprintf(buf, sizeof buf, "0x%" PRIx64, f.address);
    return buf;
}

std::string where(const std::optional<std::string>& file, const std::optional<int>& line) {
    if (!file) return "";
    return *file + (line ? ":" + std::to_string(*line) : "");
}

// Frames shared by every stack of every moment, each stored once:
// [name, "file:line" or "", module or ""].
class FrameTable {
public:
    int id(const std::string& name, const std::string& at, const std::string& module) {
        auto key = std::make_tuple(name, at, module);
        auto it = ids_.find(key);
        if (it != ids_.end()) return it->second;
        int n = static_cast<int>(rows_.size());
        rows_.push_back(json::array({name, at, module}));
        ids_.emplace(std::move(key), n);
        return n;
    }
    json take() { return std::move(rows_); }

private:
    std::map<std::tuple<std::string, std::string, std::string>, int> ids_;
    json rows_ = json::array();
};

// One stack: [pid, bytes, allocs, alloc_bytes_total, allocs_total,
// [frame ids, outermost first]]; inlined functions are frames of their own,
// after the function they are inlined into (as in the folded export).
json stacks_json(const std::vector<ReportStack>& stacks, FrameTable& frames) {
    json out = json::array();
    for (const auto& s : stacks) {
        json ids = json::array();
        if (s.frames.empty()) ids.push_back(frames.id("[stack not stored]", "", ""));
        for (auto f = s.frames.rbegin(); f != s.frames.rend(); ++f) {
            std::string module = f->module.value_or("");
            ids.push_back(frames.id(f->function ? *f->function : unnamed(*f), where(f->file, f->line), module));
            for (auto in = f->inlined.rbegin(); in != f->inlined.rend(); ++in)
                if (in->function) ids.push_back(frames.id(*in->function, where(in->file, in->line), module));
        }
        out.push_back(json::array({s.stats.pid, s.stats.bytes, s.stats.allocs, s.stats.alloc_bytes_total,
                                   s.stats.allocs_total, std::move(ids)}));
    }
    return out;
}

// Per process instance, its points in time order: [t_ns, heap, heap peak,
// rss, mapped], null where the source does not say.
struct Series {
    std::string comm;
    std::vector<std::array<json, 5>> points;
};

void add_point(std::map<std::pair<uint32_t, uint32_t>, Series>& series, int64_t t, const json& p) {
    auto key = std::make_pair(p.value("pid", 0u), p.value("epoch", 0u));
    Series& s = series[key];
    if (p.contains("comm") && p["comm"].is_string()) s.comm = p["comm"];
    auto get = [&](const char* k) { return p.contains(k) && p[k].is_number() ? p[k] : json(nullptr); };
    s.points.push_back({json(t), get("heap_bytes"), get("heap_peak_bytes"), get("rss_bytes"), get("mapped_bytes")});
}

}  // namespace

json html_sample(const Report& r) {
    json procs = json::array();
    for (const auto& p : r.processes) {
        json e = {{"pid", p.pid}, {"epoch", p.epoch}, {"comm", p.comm}};
        if (p.heap_traced) {
            e["heap_bytes"] = p.heap_bytes;
            e["heap_peak_bytes"] = p.heap_peak_bytes;
        }
        if (p.rss) e["rss_bytes"] = p.rss->resident();
        if (p.mapped_known) e["mapped_bytes"] = p.mapped_bytes;
        procs.push_back(std::move(e));
    }
    return {{"type", "sample"}, {"time_ns", ns_of(r.time)}, {"processes", std::move(procs)}};
}

json html_data(const HtmlRun& run) {
    std::map<std::pair<uint32_t, uint32_t>, Series> series;
    int64_t t0 = INT64_MAX;
    for (const auto& s : run.samples) {
        int64_t t = s.value("time_ns", int64_t{0});
        t0 = std::min(t0, t);
        if (s.contains("processes") && s["processes"].is_array())
            for (const auto& p : s["processes"]) add_point(series, t, p);
    }
    FrameTable frames;
    json moments = json::array();
    for (const auto& r : run.reports) {
        int64_t t = ns_of(r.time);
        t0 = std::min(t0, t);
        // The report's processes are points of the series too (RSS and
        // mapped bytes are only there), and name the processes.
        json at_report = html_sample(r);
        for (const auto& p : at_report["processes"]) add_point(series, t, p);
        json rep = json::parse(render_json(r));
        for (const char* heavy : {"stacks", "growth_stacks", "mappings", "line_stacks"}) rep.erase(heavy);
        bool exact = true;
        for (const auto& k : kLostKinds) exact &= r.lost[k.kind] == 0;
        const auto& heap = r.all_stacks.empty() ? r.stacks : r.all_stacks;
        moments.push_back({{"time_ns", t},
                           {"time", rfc3339(r.time)},
                           {"final", r.final},
                           {"exact", exact},
                           {"all_stacks", !r.all_stacks.empty()},
                           {"report", std::move(rep)},
                           {"heap", stacks_json(heap, frames)},
                           {"growth", stacks_json(r.growth_stacks, frames)},
                           {"mappings", stacks_json(r.mappings, frames)}});
    }
    if (t0 == INT64_MAX) t0 = 0;
    json out_series = json::array();
    for (auto& [key, s] : series) {
        std::stable_sort(s.points.begin(), s.points.end(), [](const auto& a, const auto& b) {
            return a[0].template get<int64_t>() < b[0].template get<int64_t>();
        });
        json pts = json::array();
        for (auto& p : s.points) {
            p[0] = p[0].get<int64_t>() - t0;  // ns since the first moment
            pts.push_back(json::array({p[0], p[1], p[2], p[3], p[4]}));
        }
        out_series.push_back({{"pid", key.first}, {"epoch", key.second}, {"comm", s.comm}, {"points", std::move(pts)}});
    }
    for (auto& m : moments) m["t_ns"] = m["time_ns"].get<int64_t>() - t0;
    // The moments the page opens on, by the reports' times.
    json view = json::object();
    for (size_t i = 0; i < run.reports.size(); i++) {
        const int64_t t = ns_of(run.reports[i].time);
        if (run.view_ns && t == *run.view_ns) view["moment"] = i;
        if (run.view_base_ns && t == *run.view_base_ns) view["base"] = i;
    }
    return {{"version", 1},
            {"view", std::move(view)},
            {"source", run.source},
            {"problem", run.problem},
            {"meta", run.meta},
            {"t0_ns", t0},
            {"series", std::move(out_series)},
            {"frames", frames.take()},
            {"moments", std::move(moments)}};
}

std::string render_html(const HtmlRun& run) {
    // Invalid UTF-8 in a name (a symbol is bytes) is replaced, not fatal.
    std::string data = html_data(run).dump(-1, ' ', false, json::error_handler_t::replace);
    // '<' is only ever inside a JSON string: as \u003c no name can close
    // the script element ("</script>") or open a comment in it ("<!--").
    std::string escaped;
    escaped.reserve(data.size() + data.size() / 64);
    for (char c : data) {
        if (c == '<')
            escaped += "\\u003c";
        else
            escaped += c;
    }
    std::string page = kHtmlReportTemplate;
    const std::string slot = "@MEMTOP_DATA@";
    auto at = page.find(slot);
    if (at != std::string::npos) page.replace(at, slot.size(), escaped);
    return page;
}

}  // namespace memtop
