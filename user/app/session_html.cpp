// --html OUT: the HTML report at the end of a live run (docs/exports.md).
// With --record the page is drawn from the recording, which holds the whole
// run; without it, from the final report's stacks and the time series the
// reports give (each process's heap, peak, resident and mapped bytes at
// every report).
#include <cstdio>

#include "app/html_run.h"
#include "app/session.h"
#include "record/report_codec.h"
#include "util/errors.h"

namespace memtop {

HtmlRun html_run_from_recording(const Recording& rec, const std::string& path) {
    HtmlRun run;
    run.meta = rec.header;
    run.source = "recording " + path;
    run.problem = rec.problem;
    // The samples as the reader keeps them (points where numbers changed);
    // every report whole, read again one at a time (the page holds them all).
    for (size_t i = 0; i < rec.records.size() && i < rec.points.size(); i++) {
        const auto& r = rec.records[i];
        if (r.value("type", "") != "sample") continue;
        nlohmann::json procs = nlohmann::json::array();
        for (const auto& p : rec.points[i]) procs.push_back(point_json(rec, p));
        run.samples.push_back(
            {{"type", "sample"}, {"time_ns", r.value("time_ns", int64_t{0})}, {"processes", std::move(procs)}});
    }
    auto add = [&](const nlohmann::json& r) {
        try {
            run.reports.push_back(decode_report(r.at("report")));
        } catch (const std::exception& e) {
            run.problem += (run.problem.empty() ? "" : "; ") + std::string(e.what());
        }
    };
    if (rec.path.empty()) {
        for (const auto& r : rec.records)
            if (r.value("type", "") == "report") add(r);
        return run;
    }
    std::string again;
    for_each_record(
        rec.path,
        [&](size_t, nlohmann::json& r) {
            if (r["type"] == "report") add(r);
            return true;
        },
        again);
    return run;
}

void Session::html_report(const Report& r, bool final) {
    if (opt_.exports.html.empty() || !opt_.record.empty()) return;  // drawn from the recording at the end
    html_samples_.push_back(html_sample(r));
    if (!final) return;
    HtmlRun run;
    run.meta = run_meta();
    run.source = "live run";
    run.samples = std::move(html_samples_);
    run.reports.push_back(r);
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
        write_html_file(opt_.exports.html, html_run_from_recording(read_recording(opt_.record), opt_.record));
    } catch (const MemtopError& e) {
        fprintf(stderr, "memtop: %s\n", e.what());
        export_failed_ = true;
    }
}

}  // namespace memtop
