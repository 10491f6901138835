#include "views/export/html.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <tuple>

#include "views/export/files.h"
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

std::string dump(const json& j) {
    // Invalid UTF-8 in a name (a symbol is bytes) is replaced, not fatal.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
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
        if (p.py_allocs_total || p.py_frees_total) e["py_bytes"] = p.py_bytes;
        procs.push_back(std::move(e));
    }
    return {{"type", "sample"}, {"time_ns", ns_of(r.time)}, {"processes", std::move(procs)}};
}

int HtmlPage::Frames::id(const std::string& name, const std::string& at, const std::string& module) {
    auto key = std::make_tuple(name, at, module);
    auto it = ids_.find(key);
    if (it != ids_.end()) return it->second;
    int n = static_cast<int>(rows_.size());
    rows_.push_back(json::array({name, at, module}));
    ids_.emplace(std::move(key), n);
    return n;
}

// One stack: [pid, bytes, allocs, alloc_bytes_total, allocs_total,
// [frame ids, outermost first]]; inlined functions are frames of their own,
// after the function they are inlined into (as in the folded export). The
// frames are shared by every stack of every moment, each stored once:
// [name, "file:line" or "", module or ""].
json HtmlPage::stacks_json(const std::vector<ReportStack>& stacks) {
    json out = json::array();
    for (const auto& s : stacks) {
        json ids = json::array();
        if (s.frames.empty()) ids.push_back(frames_.id("[stack not stored]", "", ""));
        for (auto f = s.frames.rbegin(); f != s.frames.rend(); ++f) {
            std::string module = f->module.value_or("");
            ids.push_back(frames_.id(f->function ? *f->function : unnamed(*f), where(f->file, f->line), module));
            for (auto in = f->inlined.rbegin(); in != f->inlined.rend(); ++in)
                if (in->function) ids.push_back(frames_.id(*in->function, where(in->file, in->line), module));
        }
        // The totals as signed numbers: a diff's (HtmlDiff) can be negative.
        out.push_back(
            json::array({s.stats.pid, s.stats.bytes, s.stats.allocs, static_cast<int64_t>(s.stats.alloc_bytes_total),
                         static_cast<int64_t>(s.stats.allocs_total), std::move(ids)}));
    }
    return out;
}

void HtmlPage::point(int64_t t_ns, uint32_t pid, uint32_t epoch, const std::string* comm, std::optional<int64_t> heap,
                     std::optional<int64_t> heap_peak, std::optional<int64_t> rss, std::optional<int64_t> mapped,
                     std::optional<int64_t> python) {
    Series& s = series_[{pid, epoch}];
    if (comm) s.comm = *comm;
    Point p{t_ns, {}, 0};
    const std::optional<int64_t>* v[5] = {&heap, &heap_peak, &rss, &mapped, &python};
    for (int i = 0; i < 5; i++)
        if (*v[i]) {
            p.v[i] = **v[i];
            p.has |= uint8_t(1u << i);
        }
    s.points.push_back(p);
}

void HtmlPage::sample(const json& s) {
    const int64_t t = s.value("time_ns", int64_t{0});
    time(t);
    if (!s.contains("processes") || !s["processes"].is_array()) return;
    for (const auto& p : s["processes"]) {
        auto get = [&](const char* k) {
            const auto v = p.find(k);
            return v != p.end() && v->is_number() ? std::optional<int64_t>(v->get<int64_t>()) : std::nullopt;
        };
        const auto c = p.find("comm");
        const std::string* comm = c != p.end() && c->is_string() ? &c->get_ref<const std::string&>() : nullptr;
        point(t, p.value("pid", 0u), p.value("epoch", 0u), comm, get("heap_bytes"), get("heap_peak_bytes"),
              get("rss_bytes"), get("mapped_bytes"), get("py_bytes"));
    }
}

void HtmlPage::report_points(int64_t t_ns, const std::vector<ProcessStats>& processes) {
    time(t_ns);
    // The report's processes are points of the series too (RSS and mapped
    // bytes are only there), and name the processes.
    for (const auto& p : processes) {
        std::optional<int64_t> heap, peak, rss, mapped, python;
        if (p.heap_traced) heap = p.heap_bytes, peak = p.heap_peak_bytes;
        if (p.rss) rss = p.rss->resident();
        if (p.mapped_known) mapped = p.mapped_bytes;
        if (p.py_allocs_total || p.py_frees_total) python = p.py_bytes;
        point(t_ns, p.pid, p.epoch, &p.comm, heap, peak, rss, mapped, python);
    }
}

void HtmlPage::moment(size_t index, Report r, bool pinned) {
    seen_ = std::max(seen_, index + 1);
    if (!keeps(index, pinned)) return;
    const int64_t t = ns_of(r.time);
    time(t);
    bool exact = true;
    for (const auto& k : kLostKinds) exact &= r.lost[k.kind] == 0;
    const bool all = !r.all_stacks.empty();
    json heap = stacks_json(all ? r.all_stacks : r.stacks);
    json growth = stacks_json(r.growth_stacks);
    json mappings = stacks_json(r.mappings);
    // Python's object domain (--python-objects): the file exports' stacks
    // (the top ones and what they leave out, files.h).
    json python = stacks_json(python_export_stacks(r));
    // The report's own JSON without its (heavy) stack lists.
    r.stacks.clear(), r.all_stacks.clear(), r.growth_stacks.clear(), r.mappings.clear();
    r.python_stacks.clear(), r.all_python_stacks.clear(), r.python_rest.clear();
    json rep = json::parse(render_json(r));
    for (const char* heavy : {"stacks", "growth_stacks", "mappings", "line_stacks"}) rep.erase(heavy);
    if (rep.contains("python")) rep["python"].erase("stacks");
    // Its JSON as one object's would be (keys in order), "t_ns" between
    // the two parts: the first moment's time is known at the end.
    std::string head = dump({{"all_stacks", all},
                             {"exact", exact},
                             {"final", r.final},
                             {"growth", std::move(growth)},
                             {"heap", std::move(heap)},
                             {"mappings", std::move(mappings)},
                             {"python", std::move(python)},
                             {"report", std::move(rep)}});
    std::string tail = dump({{"time", rfc3339(r.time)}, {"time_ns", t}});
    head.pop_back();   // '}'
    tail.erase(0, 1);  // '{'
    bytes_ += head.size() + tail.size();
    moments_.push_back({index, pinned, t, std::move(head), std::move(tail)});
    thin();
}

// Past the budget: every other report is left out (the stride doubles),
// pinned ones kept, until the rest fits or only pinned ones are left.
void HtmlPage::thin() {
    while (bytes_ > budget_ && stride_ < seen_) {
        stride_ *= 2;
        std::vector<Moment> kept;
        for (auto& m : moments_) {
            if (keeps(m.index, m.pinned))
                kept.push_back(std::move(m));
            else
                bytes_ -= m.head.size() + m.tail.size();
        }
        moments_ = std::move(kept);
    }
}

void HtmlPage::set_diff(const HtmlDiff& d) {
    json comms = json::object();
    for (const auto& p : d.change.processes) comms[std::to_string(p.pid)] = p.comm;
    diff_ = json{{"now_ns", d.now_ns},
                 {"label", d.label},
                 {"summary", d.summary},
                 {"comms", std::move(comms)},
                 {"heap", stacks_json(d.change.all_stacks)}};
}

void HtmlPage::write_data(std::string& out, bool escape) const {
    // '<' is only ever inside a JSON string: as \u003c no name can close
    // the script element ("</script>") or open a comment in it ("<!--").
    auto put = [&](const std::string& text) {
        if (!escape) {
            out += text;
            return;
        }
        size_t from = 0;
        for (size_t lt = text.find('<'); lt != std::string::npos; lt = text.find('<', from)) {
            out.append(text, from, lt - from);
            out += "\\u003c";
            from = lt + 1;
        }
        out.append(text, from, std::string::npos);
    };
    const int64_t t0 = t0_ == INT64_MAX ? 0 : t0_;
    out += "{";
    // The moments the page opens on, by the reports' times.
    json view = json::object();
    for (size_t i = 0; i < moments_.size(); i++) {
        if (view_ns && moments_[i].t == *view_ns) view["moment"] = i;
        if (view_base_ns && moments_[i].t == *view_base_ns) view["base"] = i;
    }
    if (diff_) {
        json d = *diff_;
        d["moment"] = nullptr;
        for (size_t i = 0; i < moments_.size(); i++)
            if (moments_[i].t == d["now_ns"].get<int64_t>()) d["moment"] = i;
        d.erase("now_ns");
        out += "\"diff\":";
        put(dump(d));
        out += ",";
        view["base"] = "diff";
    }
    out += "\"frames\":";
    put(dump(frames_.rows()));
    out += ",\"meta\":";
    put(dump(meta));
    out += ",\"moments\":[";
    for (size_t i = 0; i < moments_.size(); i++) {
        const Moment& m = moments_[i];
        if (i) out += ",";
        put(m.head);
        out += ",\"t_ns\":" + std::to_string(m.t - t0) + ",";
        put(m.tail);
    }
    out += "],\"problem\":";
    put(dump(problem));
    // Only when reports were left out: a page that holds them all reads as before.
    if (moments_.size() < seen_) out += ",\"reports_in_recording\":" + std::to_string(seen_);
    out += ",\"series\":[";
    bool first = true;
    for (const auto& [key, s] : series_) {
        std::vector<Point> pts = s.points;
        std::stable_sort(pts.begin(), pts.end(), [](const Point& a, const Point& b) { return a.t < b.t; });
        out += first ? "{\"comm\":" : ",{\"comm\":";
        first = false;
        put(dump(s.comm));
        out += ",\"epoch\":" + std::to_string(key.second) + ",\"pid\":" + std::to_string(key.first) + ",\"points\":[";
        for (size_t i = 0; i < pts.size(); i++) {
            out += (i ? ",[" : "[") + std::to_string(pts[i].t - t0);  // ns since the first moment
            for (int k = 0; k < 5; k++) out += pts[i].has & (1u << k) ? "," + std::to_string(pts[i].v[k]) : ",null";
            out += "]";
        }
        out += "]}";
    }
    out += "],\"source\":";
    put(dump(source));
    out += ",\"t0_ns\":" + std::to_string(t0) + ",\"version\":1,\"view\":";
    put(dump(view));
    out += "}";
}

std::string HtmlPage::data() const {
    std::string out;
    write_data(out, false);
    return out;
}

std::string HtmlPage::render() const {
    const std::string page = kHtmlReportTemplate;
    const std::string slot = "@MEMTOP_DATA@";
    const auto at = page.find(slot);
    if (at == std::string::npos) return page;
    std::string out;
    out.reserve(page.size() + bytes_ + bytes_ / 64);
    out.append(page, 0, at);
    write_data(out, true);
    out.append(page, at + slot.size(), std::string::npos);
    return out;
}

HtmlPage html_page(const HtmlRun& run) {
    HtmlPage page(SIZE_MAX);
    page.meta = run.meta;
    page.source = run.source;
    page.problem = run.problem;
    page.view_ns = run.view_ns;
    page.view_base_ns = run.view_base_ns;
    for (const auto& s : run.samples) page.sample(s);
    for (size_t i = 0; i < run.reports.size(); i++) {
        page.report_points(ns_of(run.reports[i].time), run.reports[i].processes);
        page.moment(i, run.reports[i], true);
    }
    if (run.diff) page.set_diff(*run.diff);
    return page;
}

json html_data(const HtmlRun& run) {
    return json::parse(html_page(run).data());
}

std::string render_html(const HtmlRun& run) {
    return html_page(run).render();
}

}  // namespace memtop
