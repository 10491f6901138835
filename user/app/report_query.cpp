#include "app/report_query.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "util/errors.h"
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

uint32_t parse_pid(const std::string& s) {
    char* end = nullptr;
    long v = strtol(s.c_str(), &end, 10);
    if (s.empty() || *end || v <= 0 || v > 0x3fffffff)
        throw MemtopError(kExitUsage, "--peak " + s + ": not a process id");
    return static_cast<uint32_t>(v);
}

}  // namespace

void check_report_query(const ReportQuery& q, const ExportFiles& /*exports*/) {
    if (!q.at.empty() && q.peak) throw MemtopError(kExitUsage, "--at and --peak: choose one moment");
}

std::optional<ChosenReport> choose_report(Recording& rec, const std::string& file, const ReportQuery& q) {
    const int64_t start = recording_start_ns(rec);
    std::optional<int64_t> moment;
    std::optional<uint32_t> peak_pid;
    std::string asked;
    if (!q.at.empty()) {
        moment = parse_moment(q.at, start, "--at");
        const int64_t end = recording_end_ns(rec);
        if (*moment > end)
            throw MemtopError(kExitUsage, "--at " + q.at + ": after the end of " + file + " (its last record is at " +
                                              since_start(end, start) + ")");
        asked = "--at " + when(*moment, start);
    } else if (q.peak) {
        std::optional<uint32_t> pid;
        if (!q.peak->empty()) pid = parse_pid(*q.peak);
        auto peak = heap_peak(rec, pid);
        if (!peak)
            throw MemtopError(kExitUsage, pid ? "--peak " + *q.peak + ": " + file + " holds no heap of pid " + *q.peak
                                              : "--peak: " + file + " holds no heap numbers (no heap-traced process)");
        moment = peak->until_ns;
        peak_pid = peak->pid;
        asked = "the peak heap of pid " + std::to_string(peak->pid) + (pid ? "" : " (the highest of all processes)") +
                ", " + bytes_text(peak->heap_bytes) + ", at " + when(peak->time_ns, start) +
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
        throw MemtopError(kExitUsage, (q.at.empty() ? std::string("--peak") : "--at " + q.at) + ": " + file +
                                          " has no report at or before " + since_start(*moment, start) + first);
    }
    // With --peak, the report's own heap of that process: the peak, or
    // (when the heap fell before the next report) what the report before saw.
    std::string heap_then;
    if (peak_pid)
        for (const auto& p : chosen->report.processes)
            if (p.pid == *peak_pid && p.heap_traced) heap_then = ", its heap there " + bytes_text(p.heap_bytes);
    fprintf(stderr, "memtop: %s: showing report %zu of %zu, made at %s%s\n", asked.c_str(), chosen->number,
            chosen->reports, when(chosen->time_ns, start).c_str(), heap_then.c_str());
    return chosen;
}

}  // namespace memtop
