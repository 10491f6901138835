#include "record/plot_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "record/moments.h"
#include "views/format.h"

namespace memtop {

namespace {

constexpr int kWidth = 1000, kHeight = 500;
constexpr int kLeft = 90, kRight = 230, kTop = 40, kBottom = 50;  // the legend is on the right
constexpr double kLegendStep = 46;                                // a process's 3 lines in the legend
// Distinct on white, in the order processes are drawn (matplotlib's "tab10").
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string xml(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += (static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
        }
    }
    return out;
}

std::string num(double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

int64_t time_of(const nlohmann::json& r) {
    if (r.value("type", "") == "report" && r.contains("report") && r["report"].is_object())
        return r["report"].value("time_ns", int64_t{0});
    return r.value("time_ns", int64_t{0});
}

// A "nice" axis step (1, 2 or 5 times a power of 1024 or 10) giving about
// `ticks` ticks up to `max`.
double nice_step(double max, int ticks) {
    double raw = max / ticks;
    double base = 1;
    while (base * 1024 <= raw) base *= 1024;
    for (double m : {1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1024.0})
        if (base * m >= raw) return base * m;
    return base * 1024;
}

}  // namespace

int64_t ProcessSeries::peak() const {
    const auto& v = heap.empty() ? rss : heap;
    int64_t best = 0;
    for (const auto& p : v) best = std::max(best, p.bytes);
    return best;
}

std::vector<ProcessSeries> memory_series(const Recording& rec) {
    // A process is reported with epoch 0 until its first traced allocation
    // gives it one: those numbers belong to the instance that follows.
    std::map<uint32_t, uint32_t> first_epoch;
    for (const auto& list : rec.points)
        for (const auto& p : list)
            if (p.epoch != 0) first_epoch.try_emplace(p.pid, p.epoch);
    std::map<std::pair<uint32_t, uint32_t>, ProcessSeries> by_proc;
    auto proc = [&](const ProcPoint& p) -> ProcessSeries& {
        uint32_t epoch = p.epoch;
        if (epoch == 0)
            if (auto it = first_epoch.find(p.pid); it != first_epoch.end()) epoch = it->second;
        ProcessSeries& s = by_proc[{p.pid, epoch}];
        s.pid = p.pid, s.epoch = epoch;
        return s;
    };
    for (size_t i = 0; i < rec.records.size() && i < rec.points.size(); i++) {
        const nlohmann::json& r = rec.records[i];
        const std::string type = r.value("type", "");
        const int64_t t = time_of(r);
        if (type == "sample") {
            for (const auto& p : rec.points[i]) {
                if (p.holds(ProcPoint::kHeap)) proc(p).heap.push_back({t, p.heap_bytes});
                // Resident memory in samples: recordings of format version 2.
                if (p.holds(ProcPoint::kRssBytes)) proc(p).rss.push_back({t, p.rss_bytes});
                // The Python domain in samples: recordings of format version 3.
                if (p.holds(ProcPoint::kPy)) proc(p).python.push_back({t, p.py_bytes});
            }
        } else if (type == "report") {
            for (const auto& p : rec.points[i]) {
                ProcessSeries& s = proc(p);
                if (p.holds(ProcPoint::kComm)) s.comm = rec.comm_of(p);
                if (p.heap_traced && p.holds(ProcPoint::kHeap)) s.heap.push_back({t, p.heap_bytes});
                if (p.has & (ProcPoint::kRssFile | ProcPoint::kRssAnon | ProcPoint::kRssShmem | ProcPoint::kRssSwap))
                    s.rss.push_back({t, p.rss_file + p.rss_anon + p.rss_shmem});
                if (p.holds(ProcPoint::kPy)) s.python.push_back({t, p.py_bytes});
            }
        }
    }
    std::vector<ProcessSeries> out;
    for (auto& [key, s] : by_proc) {
        if (s.heap.empty() && s.rss.empty() && s.python.empty()) continue;
        auto by_time = [](const PlotPoint& a, const PlotPoint& b) { return a.t_ns < b.t_ns; };
        std::stable_sort(s.heap.begin(), s.heap.end(), by_time);
        std::stable_sort(s.rss.begin(), s.rss.end(), by_time);
        std::stable_sort(s.python.begin(), s.python.end(), by_time);
        out.push_back(std::move(s));
    }
    std::stable_sort(out.begin(), out.end(), [](const ProcessSeries& a, const ProcessSeries& b) {
        return std::make_tuple(-a.peak(), a.pid) < std::make_tuple(-b.peak(), b.pid);
    });
    return out;
}

std::string render_plot_svg(const Recording& rec, const std::string& title, size_t max_processes) {
    std::vector<ProcessSeries> all = memory_series(rec);
    const size_t shown = std::min(all.size(), max_processes);
    const int64_t start = recording_start_ns(rec);
    int64_t end = std::max(recording_end_ns(rec), start + 1);
    int64_t max_bytes = 1;
    for (size_t i = 0; i < shown; i++) {
        for (const auto& p : all[i].heap) max_bytes = std::max(max_bytes, p.bytes);
        for (const auto& p : all[i].rss) max_bytes = std::max(max_bytes, p.bytes);
        for (const auto& p : all[i].python) max_bytes = std::max(max_bytes, p.bytes);
    }
    const double seconds = static_cast<double>(end - start) / 1e9;
    const double y_step = nice_step(static_cast<double>(max_bytes), 5);
    const double y_max = std::ceil(static_cast<double>(max_bytes) * 1.05 / y_step) * y_step;
    double x_step = 0.1;
    for (double c : {0.1,   0.2,   0.5,   1.0,    2.0,    5.0,    10.0,   20.0,    30.0,    60.0,
                     120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0}) {
        x_step = c;
        if (seconds / c <= 10) break;
    }
    const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
    auto X = [&](int64_t t) { return kLeft + pw * (static_cast<double>(t - start) / 1e9) / seconds; };
    auto Y = [&](int64_t b) { return kTop + ph - ph * static_cast<double>(b) / y_max; };

    std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) + "\" height=\"" +
           std::to_string(kHeight) + "\" viewBox=\"0 0 " + std::to_string(kWidth) + " " + std::to_string(kHeight) +
           "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    svg += "<title>" + xml(title) + "</title>\n";
    svg += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(kWidth) + "\" height=\"" + std::to_string(kHeight) +
           "\" fill=\"#ffffff\"/>\n";
    svg += "<text x=\"" + std::to_string(kLeft) + "\" y=\"24\" font-size=\"15\">" + xml(title) + "</text>\n";
    // Axes, grid and ticks.
    svg += "<g class=\"axes\" stroke=\"#cccccc\" stroke-width=\"1\">\n";
    for (double v = 0; v <= y_max + y_step / 2; v += y_step)  // whole multiples: exact in a double
        svg += "<line x1=\"" + num(kLeft) + "\" y1=\"" + num(Y(static_cast<int64_t>(v))) + "\" x2=\"" +
               num(kLeft + pw) + "\" y2=\"" + num(Y(static_cast<int64_t>(v))) + "\"/>\n";
    svg += "</g>\n<g class=\"ticks\" fill=\"#333333\">\n";
    for (double v = 0; v <= y_max + y_step / 2; v += y_step)
        svg += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(Y(static_cast<int64_t>(v)) + 4) +
               "\" text-anchor=\"end\">" + xml(human_bytes(static_cast<int64_t>(v))) + "</text>\n";
    for (int k = 0; k * x_step <= seconds + 1e-9; k++) {
        const double sec = k * x_step, x = kLeft + pw * sec / seconds;
        char label[32];
        snprintf(label, sizeof label, x_step < 1 ? "%.1f" : "%.0f", sec);
        svg += "<text x=\"" + num(x) + "\" y=\"" + num(kTop + ph + 18) + "\" text-anchor=\"middle\">" + label +
               "</text>\n";
    }
    svg += "<text x=\"" + num(kLeft + pw / 2) + "\" y=\"" + num(kHeight - 10) +
           "\" text-anchor=\"middle\">seconds since the recording's start</text>\n";
    svg += "</g>\n";
    svg += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(pw) + "\" height=\"" + num(ph) +
           "\" fill=\"none\" stroke=\"#333333\"/>\n";

    // Series: RSS dashed and Python dotted under heap solid, then the peaks on top.
    std::string peaks, legend;
    double legend_y = kTop + 14;  // the next process's first legend line
    bool any_python = false;
    for (size_t i = 0; i < shown; i++) {
        const ProcessSeries& s = all[i];
        const char* color = kColors[i % (sizeof kColors / sizeof kColors[0])];
        const std::string who = (s.comm.empty() ? std::string("?") : s.comm) + " (" + std::to_string(s.pid) + ")";
        auto line = [&](const std::vector<PlotPoint>& pts, const char* kind, const char* dash) {
            if (pts.empty()) return;
            std::string points, values;
            for (const auto& p : pts) {
                points += num(X(p.t_ns)) + "," + num(Y(p.bytes)) + " ";
                values += num(static_cast<double>(p.t_ns - start) / 1e9) + ":" + std::to_string(p.bytes) + " ";
            }
            points.pop_back(), values.pop_back();
            svg += std::string("<polyline class=\"") + kind + "\" data-pid=\"" + std::to_string(s.pid) +
                   "\" data-values=\"" + values + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\"" +
                   (dash ? std::string(" stroke-dasharray=\"") + dash + "\"" : "") + " points=\"" + points +
                   "\"><title>" + xml(who) + " " + kind + "</title></polyline>\n";
        };
        line(s.rss, "rss", "6,4");
        line(s.python, "python", "2,3");
        line(s.heap, "heap", nullptr);
        const auto& pv = s.heap.empty() ? s.rss : s.heap;
        auto top = std::max_element(pv.begin(), pv.end(),
                                    [](const PlotPoint& a, const PlotPoint& b) { return a.bytes < b.bytes; });
        if (top != pv.end()) {
            // Exact bytes on one legend line, the rounded size and the time
            // on the next: each fits the legend's width.
            const std::string exact = "peak " + (s.heap.empty() ? std::string("RSS ") : std::string("heap ")) +
                                      std::to_string(top->bytes) + " B";
            const std::string rounded = "(" + human_bytes(top->bytes) + ")";
            const std::string label = exact + " " + rounded;
            const std::string at = "at " + since_start(top->t_ns, start);
            peaks += "<circle class=\"peak\" data-pid=\"" + std::to_string(s.pid) + "\" data-bytes=\"" +
                     std::to_string(top->bytes) + "\" cx=\"" + num(X(top->t_ns)) + "\" cy=\"" + num(Y(top->bytes)) +
                     "\" r=\"5\" fill=\"" + color + "\" stroke=\"#000000\"><title>" +
                     xml(who + ": " + label + " " + at) + "</title></circle>\n";
            const double ly = legend_y;
            legend_y += kLegendStep;
            legend += "<line x1=\"" + num(kWidth - kRight + 12) + "\" y1=\"" + num(ly - 4) + "\" x2=\"" +
                      num(kWidth - kRight + 32) + "\" y2=\"" + num(ly - 4) + "\" stroke=\"" + color +
                      "\" stroke-width=\"2\"/>\n";
            legend += "<text x=\"" + num(kWidth - kRight + 38) + "\" y=\"" + num(ly) + "\">" + xml(who) + "</text>\n";
            legend += "<text class=\"peak-label\" x=\"" + num(kWidth - kRight + 38) + "\" y=\"" + num(ly + 15) +
                      "\" font-size=\"11\">" + xml(exact) + "</text>\n";
            legend += "<text x=\"" + num(kWidth - kRight + 38) + "\" y=\"" + num(ly + 28) + "\" font-size=\"11\">" +
                      xml(rounded + " " + at) + "</text>\n";
        }
        // The Python domain's highest, a square (its bytes are not the
        // heap's: a peak of their own), on one more legend line.
        auto py_top = std::max_element(s.python.begin(), s.python.end(),
                                       [](const PlotPoint& a, const PlotPoint& b) { return a.bytes < b.bytes; });
        if (py_top != s.python.end()) {
            any_python = true;
            const std::string exact = "peak python " + std::to_string(py_top->bytes) + " B";
            const std::string at = "at " + since_start(py_top->t_ns, start);
            peaks += "<rect class=\"peak-python\" data-pid=\"" + std::to_string(s.pid) + "\" data-bytes=\"" +
                     std::to_string(py_top->bytes) + "\" x=\"" + num(X(py_top->t_ns) - 4) + "\" y=\"" +
                     num(Y(py_top->bytes) - 4) + "\" width=\"8\" height=\"8\" fill=\"" + color +
                     "\" stroke=\"#000000\"><title>" +
                     xml(who + ": " + exact + " (" + human_bytes(py_top->bytes) + ") " + at) + "</title></rect>\n";
            // Under the process's three lines (a process is listed when it has a heap or RSS).
            if (top != pv.end()) {
                legend += "<text class=\"peak-python-label\" x=\"" + num(kWidth - kRight + 38) + "\" y=\"" +
                          num(legend_y - kLegendStep + 41) + "\" font-size=\"11\">" + xml(exact) + "</text>\n";
                legend_y += 14;
            }
        }
    }
    svg += peaks;
    const double ny = legend_y;
    legend += "<text x=\"" + num(kWidth - kRight + 12) + "\" y=\"" + num(ny) +
              "\" font-size=\"11\">solid: heap; dashed: RSS" + (any_python ? "; dotted: Python" : "") + "</text>\n";
    if (all.size() > shown)
        legend += "<text x=\"" + num(kWidth - kRight + 12) + "\" y=\"" + num(ny + 16) + "\" font-size=\"11\">" +
                  std::to_string(all.size() - shown) + " more processes not shown</text>\n";
    if (all.empty())
        svg += "<text x=\"" + num(kLeft + pw / 2) + "\" y=\"" + num(kTop + ph / 2) +
               "\" text-anchor=\"middle\">no memory numbers in this recording</text>\n";
    svg += legend + "</svg>\n";
    return svg;
}

}  // namespace memtop
