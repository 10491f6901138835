// --html OUT: the HTML report at the end of a live run (docs/exports.md).
// With --record the page is drawn from the recording, which holds the whole
// run; without it, from the final report's stacks and the time series the
// reports give (each process's heap, peak, resident and mapped bytes, and
// its Python domain, at every report).
#include <cstdio>

#include "app/html_run.h"
#include "app/session.h"
#include "record/report_codec.h"
#include "util/errors.h"

namespace memtop {

HtmlPage html_page_from_recording(const Recording& rec, const std::string& path, std::optional<int64_t> view_ns,
                                  std::optional<int64_t> base_ns, size_t budget) {
    HtmlPage page(budget);
    page.meta = rec.header;
    page.source = "recording " + path;
    page.problem = rec.problem;
    page.view_ns = view_ns;
    page.view_base_ns = base_ns;
    // The samples as the reader keeps them (points where numbers changed).
    std::vector<size_t> report_no(rec.records.size(), SIZE_MAX);
    size_t reports = 0, last = SIZE_MAX;
    for (size_t i = 0; i < rec.records.size(); i++) {
        const auto& r = rec.records[i];
        const std::string type = r.value("type", "");
        if (type == "report") {
            last = reports;
            report_no[i] = reports++;
        }
        if (type != "sample" || i >= rec.points.size()) continue;
        const int64_t t = r.value("time_ns", int64_t{0});
        page.time(t);
        for (const auto& p : rec.points[i]) {
            auto opt = [&](uint16_t f, int64_t v) { return p.holds(f) ? std::optional<int64_t>(v) : std::nullopt; };
            page.point(t, p.pid, p.epoch, p.holds(ProcPoint::kComm) ? &rec.comm_of(p) : nullptr,
                       opt(ProcPoint::kHeap, p.heap_bytes), opt(ProcPoint::kHeapPeak, p.heap_peak_bytes),
                       opt(ProcPoint::kRssBytes, p.rss_bytes), opt(ProcPoint::kMapped, p.mapped_bytes),
                       opt(ProcPoint::kPy, p.py_bytes));
        }
    }
    // The reports the page opens on, and the last, are always moments.
    auto pinned = [&](size_t n) {
        if (report_no[n] == last) return true;
        const auto& r = rec.records[n];
        if (!r.contains("report") || !r["report"].is_object()) return false;
        const int64_t t = r["report"].value("time_ns", int64_t{0});
        return (view_ns && t == *view_ns) || (base_ns && t == *base_ns);
    };
    auto failed = [&](const std::exception& e) {
        page.problem += (page.problem.empty() ? "" : "; ") + std::string(e.what());
    };
    std::string again;
    for_each_report(
        rec, [&](size_t n) { return page.keeps(report_no[n], pinned(n)); },
        [&](size_t n, nlohmann::json& r, bool whole) {
            try {
                if (!whole) {
                    page.report_points(r.at("time_ns").get<int64_t>(), decode_processes(r));
                    page.passed(report_no[n]);
                    return;
                }
                Report rep = decode_report(r);
                page.report_points(r.at("time_ns").get<int64_t>(), rep.processes);
                page.moment(report_no[n], std::move(rep), pinned(n));
            } catch (const std::exception& e) {
                failed(e);
            }
        },
        again);
    return page;
}

void Session::html_report(const Report& r, bool final, const Report& summary) {
    if (opt_.exports.html.empty() || !opt_.record.empty()) return;  // drawn from the recording at the end
    html_samples_.push_back(html_sample(r));
    if (!final) return;
    HtmlRun run;
    run.meta = run_meta();
    run.source = "live run";
    run.samples = std::move(html_samples_);
    run.reports.push_back(summary);
    try {
        write_html_file(opt_.exports.html, run);
    } catch (const MemtopError& e) {
        fprintf(stderr, "memtop: %s\n", e.what());
        export_failed_ = true;
    }
}

void Session::finish_html() {
    if (opt_.exports.html.empty() || opt_.record.empty()) return;
    try {
        const Recording rec = read_recording(opt_.record);
        write_html_file(opt_.exports.html, html_page_from_recording(rec, opt_.record, std::nullopt, std::nullopt));
    } catch (const MemtopError& e) {
        fprintf(stderr, "memtop: %s\n", e.what());
        export_failed_ = true;
    }
}

}  // namespace memtop
