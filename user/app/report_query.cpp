#include "app/report_query.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>

#include "aggregate/ended_targets.h"
#include "record/diff.h"
#include "record/diff_view.h"
#include "record/plot_svg.h"
#include "record/report_codec.h"
#include "util/errors.h"
#include "util/exclusive_file.h"
#include "views/format.h"

namespace memtop {

namespace {

std::string bytes_text(int64_t b) {
    return b < 1024 ? human_bytes(b) : std::to_string(b) + " B (" + human_bytes(b) + ")";
}

// "+2.50 s (2026-12-06T07:00:01.250Z)": both forms --at takes.
std::string when(int64_t t_ns, int64_t start_ns) {
    std::time_t s = static_cast<std::time_t>(t_ns / 1000000000);
    std::tm tm;
    gmtime_r(&s, &tm);
    char buf[48];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(t_ns % 1000000000 / 1000000));
    return since_start(t_ns, start_ns) + " (" + buf + ")";
}

uint32_t parse_pid(const std::string& s, const std::string& opt) {
    char* end = nullptr;
    long v = strtol(s.c_str(), &end, 10);
    if (s.empty() || *end || v <= 0 || v > 0x3fffffff)
        throw MemtopError(kExitUsage, opt + " " + s + ": not a process id");
    return static_cast<uint32_t>(v);
}

}  // namespace

void check_report_query(const ReportQuery& q, const ExportFiles& exports) {
    if ((!q.at.empty()) + bool(q.peak) + bool(q.peak_rss) + bool(q.peak_python) > 1)
        throw MemtopError(kExitUsage, "--at, --peak, --peak-rss and --peak-python: choose one moment");
    if (!q.diff.empty() && !q.diff_from.empty())
        throw MemtopError(kExitUsage, "--diff and --diff-from: choose one base");
    if (q.diffing() && !exports.folded.empty())
        throw MemtopError(
            kExitUsage, "--folded: not with a diff (folded stacks hold no negative numbers); --pprof writes the diff");
}

void add_ended_earlier(const Recording& rec, ChosenReport& chosen) {
    const std::string mode = rec.header.value("mode", "");
    if (!chosen.report.final || (mode != "command" && mode != "pid")) return;
    // Which reports list a process at its end: their processes only, then
    // those reports whole (stacks folded). The file is read twice at most.
    std::set<size_t> with_ended;
    std::string problem;
    size_t final_index = 0;
    for_each_report(
        rec, [](size_t) { return false; },
        [&](size_t n, nlohmann::json& r, bool) {
            if (r.value("final", false)) final_index = n;
            const auto ps = r.find("processes");
            if (ps == r.end() || !ps->is_array()) return;
            for (const auto& p : *ps)
                if (p.is_object() && p.value("exited", false)) {
                    with_ended.insert(n);
                    return;
                }
        },
        problem);
    with_ended.erase(final_index);
    if (with_ended.empty()) return;
    EndedTargets ended(rec.header.value("top", size_t{10}));
    for_each_report(
        rec, [&](size_t n) { return with_ended.count(n) > 0; },
        [&](size_t n, nlohmann::json& r, bool whole) {
            if (!whole || !with_ended.count(n)) return;
            try {
                ended.keep(decode_report(r));
            } catch (const std::exception&) {
                // Not decoded: said by the reader's problem, if at all; its
                // processes are only in the report of their end.
            }
        },
        problem);
    ended.add_to(chosen.report, std::nullopt);
}

std::optional<ChosenReport> choose_report(Recording& rec, const std::string& file, const ReportQuery& q) {
    const int64_t start = recording_start_ns(rec);
    std::optional<int64_t> moment;
    std::optional<uint32_t> peak_pid;
    PeakOf peak_of = PeakOf::Heap;
    std::string asked;
    if (!q.at.empty()) {
        moment = parse_moment(q.at, start, "--at");
        const int64_t end = recording_end_ns(rec);
        if (*moment > end)
            throw MemtopError(kExitUsage, "--at " + q.at + ": after the end of " + file + " (its last record is at " +
                                              since_start(end, start) + ")");
        asked = "--at " + when(*moment, start);
    } else if (q.peak || q.peak_rss || q.peak_python) {
        peak_of = q.peak ? PeakOf::Heap : q.peak_rss ? PeakOf::Rss : PeakOf::Python;
        const std::string opt = q.peak ? "--peak" : q.peak_rss ? "--peak-rss" : "--peak-python";
        const std::string& arg = q.peak ? *q.peak : q.peak_rss ? *q.peak_rss : *q.peak_python;
        const char* what = peak_of == PeakOf::Heap  ? "heap"
                           : peak_of == PeakOf::Rss ? "resident memory (RSS)"
                                                    : "Python domain";
        const char* none = peak_of == PeakOf::Heap  ? " (no heap-traced process)"
                           : peak_of == PeakOf::Rss ? ""
                                                    : " (recorded without --python-objects, or no CPython's "
                                                      "objects were counted)";
        std::optional<uint32_t> pid;
        if (!arg.empty()) pid = parse_pid(arg, opt);
        auto peak = heap_peak(rec, pid, peak_of);
        if (!peak)
            throw MemtopError(kExitUsage, pid ? opt + " " + arg + ": " + file + " holds no " + what + " of pid " + arg
                                              : opt + ": " + file + " holds no " + what + " numbers" + none);
        moment = peak->report_ns ? peak->report_ns : peak->until_ns;
        peak_pid = peak->pid;
        const char* short_name = peak_of == PeakOf::Heap ? "heap" : peak_of == PeakOf::Rss ? "RSS" : "Python domain";
        asked = "the peak " + std::string(short_name) + " of pid " + std::to_string(peak->pid) +
                (pid ? "" : " (the highest of all processes)") + ", " + bytes_text(peak->heap_bytes) + ", at " +
                when(peak->time_ns, start) +
                (peak->until_ns > peak->time_ns ? " until " + since_start(peak->until_ns, start) : "");
    }
    auto chosen = report_at_or_before(rec, moment);
    if (!moment) return chosen;
    if (!chosen) {
        std::string first = " (it holds no whole report)";
        for (const auto& r : rec.records)
            if (r.value("type", "") == "report" && r.contains("report") && r["report"].is_object()) {
                first = " (its first is at " + since_start(r["report"].value("time_ns", int64_t{0}), start) + ")";
                break;
            }
        throw MemtopError(kExitUsage, (q.at.empty() ? std::string(peak_of == PeakOf::Heap  ? "--peak"
                                                                  : peak_of == PeakOf::Rss ? "--peak-rss"
                                                                                           : "--peak-python")
                                                    : "--at " + q.at) +
                                          ": " + file + " has no report at or before " + since_start(*moment, start) +
                                          first);
    }
    // With --peak, the report's own heap of that process: the peak, or
    // (when the peak was shorter than the report interval) the highest any
    // report saw.
    std::string heap_then;
    if (peak_pid) {
        for (const auto& p : chosen->report.processes) {
            if (p.pid != *peak_pid) continue;
            if (peak_of == PeakOf::Rss && p.rss) heap_then = ", its RSS there " + bytes_text(p.rss->resident());
            if (peak_of == PeakOf::Heap && p.heap_traced) heap_then = ", its heap there " + bytes_text(p.heap_bytes);
            if (peak_of == PeakOf::Python) heap_then = ", its Python domain there " + bytes_text(p.py_bytes);
        }
    }
    fprintf(stderr, "memtop: %s: showing report %zu of %zu, made at %s%s\n", asked.c_str(), chosen->number,
            chosen->reports, when(chosen->time_ns, start).c_str(), heap_then.c_str());
    return chosen;
}

namespace {

std::string side_name(const std::string& file, const ChosenReport& c, int64_t start) {
    return file + ", report " + std::to_string(c.number) + " of " + std::to_string(c.reports) + ", made at " +
           when(c.time_ns, start);
}

}  // namespace

int64_t show_diff(Recording& rec, const std::string& file, const ChosenReport& now, const ReportQuery& q, bool json,
                  const ExportFiles& exports, std::optional<HtmlDiff>* html) {
    DiffSides sides;
    sides.now = side_name(file, now, recording_start_ns(rec));
    std::optional<ChosenReport> base;
    if (!q.diff_from.empty()) {
        const int64_t start = recording_start_ns(rec);
        const int64_t t = parse_moment(q.diff_from, start, "--diff-from");
        if (t > recording_end_ns(rec))
            throw MemtopError(kExitUsage, "--diff-from " + q.diff_from + ": after the end of " + file +
                                              " (its last record is at " + since_start(recording_end_ns(rec), start) +
                                              ")");
        base = report_at_or_before(rec, t);
        if (!base)
            throw MemtopError(kExitUsage, "--diff-from " + q.diff_from + ": " + file + " has no report at or before " +
                                              since_start(t, start));
        sides.base = side_name(file, *base, start);
    } else {
        Recording other = read_recording(q.diff);
        base = report_at_or_before(other, std::nullopt);
        if (!base)
            throw MemtopError(kExitFailure, "--diff " + q.diff + ": holds no whole report" +
                                                (other.problem.empty() ? "" : " (" + other.problem + ")"));
        add_ended_earlier(other, *base);
        if (!other.problem.empty())
            fprintf(stderr, "memtop: read recording %s: %s; diffing against its last whole report\n", q.diff.c_str(),
                    other.problem.c_str());
        sides.base = side_name(q.diff, *base, recording_start_ns(other));
    }
    ReportDiff d = diff_reports(base->report, now.report);
    std::string out = json ? render_diff_json(d, sides) + "\n" : render_diff_text(d, sides);
    fwrite(out.data(), 1, out.size(), stdout);
    fflush(stdout);
    if (!exports.pprof.empty()) {
        ExportFiles pprof_only;
        pprof_only.pprof = exports.pprof;
        write_export_files(diff_as_report(d, now.report), pprof_only);
    }
    if (html && !q.diff.empty()) {
        // The page shows the changes as the text says them: its totals'
        // lines (the third and fourth), and every changed stack.
        HtmlDiff h;
        h.now_ns = now.time_ns;
        h.label = sides.base;
        const std::string text = render_diff_text(d, sides);
        size_t at = 0;
        for (int line = 0; line < 2 && at != std::string::npos; line++) at = text.find('\n', at) + 1;
        const size_t end = text.find('\n', text.find('\n', at) + 1);
        h.summary = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
        h.change = diff_as_report(d, now.report);
        *html = std::move(h);
    }
    return base->time_ns;
}

void write_plot(const Recording& rec, const std::string& file, const std::string& out) {
    const std::string svg = render_plot_svg(rec, "memtop: memory over time, " + file);
    write_file_exclusive("--plot", out, svg);
}

}  // namespace memtop
