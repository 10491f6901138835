#include "record/moments.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <tuple>
#include <vector>

#include "record/report_codec.h"
#include "util/errors.h"

namespace memtop {

namespace {

// "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" -> ns since the epoch.
std::optional<int64_t> parse_rfc3339(const std::string& s) {
    int Y, M, D, h, m, sec, n = 0;
    char T;
    if (sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &Y, &M, &D, &T, &h, &m, &sec, &n) != 7 || n != 19)
        return std::nullopt;
    if (T != 'T' && T != 't' && T != ' ') return std::nullopt;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return std::nullopt;
    size_t i = 19;
    int64_t frac_ns = 0;
    if (i < s.size() && s[i] == '.') {
        int64_t scale = 100000000;
        size_t digits = 0;
        for (i++; i < s.size() && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
            frac_ns += (s[i] - '0') * scale;
            scale /= 10;
        }
        if (digits == 0) return std::nullopt;
    }
    int64_t offset_s = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        int oh, om, k = 0;
        if (sscanf(s.c_str() + i + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59)
            return std::nullopt;
        offset_s = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        i += 6;
    } else {
        return std::nullopt;  // RFC 3339 requires the offset
    }
    if (i != s.size()) return std::nullopt;
    std::tm tm{};
    tm.tm_year = Y - 1900, tm.tm_mon = M - 1, tm.tm_mday = D, tm.tm_hour = h, tm.tm_min = m, tm.tm_sec = sec;
    int64_t t = timegm(&tm);
    return (t - offset_s) * 1000000000LL + frac_ns;
}

int64_t record_time(const nlohmann::json& rec) {
    if (rec.value("type", "") == "report" && rec.contains("report") && rec["report"].is_object())
        return rec["report"].value("time_ns", int64_t{0});
    return rec.value("time_ns", int64_t{0});
}

}  // namespace

int64_t recording_start_ns(const Recording& rec) {
    if (rec.header.contains("start_ns") && rec.header["start_ns"].is_number_integer())
        return rec.header["start_ns"].get<int64_t>();
    if (rec.header.contains("start") && rec.header["start"].is_string())
        if (auto t = parse_rfc3339(rec.header["start"].get<std::string>())) return *t;
    for (const auto& r : rec.records)
        if (int64_t t = record_time(r)) return t;
    return 0;
}

int64_t recording_end_ns(const Recording& rec) {
    int64_t end = 0;
    for (const auto& r : rec.records)
        if (int64_t t = record_time(r); t > end) end = t;
    return end;
}

int64_t parse_moment(const std::string& text, int64_t start_ns, const char* option) {
    if (auto t = parse_rfc3339(text)) return *t;
    char* end = nullptr;
    double sec = strtod(text.c_str(), &end);
    if (text.empty() || *end || !std::isfinite(sec) || sec < 0 || text.find_first_of("xX") != std::string::npos)
        throw MemtopError(kExitUsage, std::string(option) + " " + text +
                                          ": not a time (seconds since the recording's start, e.g. 12.5, or an "
                                          "RFC 3339 time, e.g. 2026-12-06T07:00:01.5Z)");
    return start_ns + static_cast<int64_t>(std::llround(sec * 1e9));
}

std::string since_start(int64_t t_ns, int64_t start_ns) {
    char buf[48];
    snprintf(buf, sizeof buf, "%+.2f s", static_cast<double>(t_ns - start_ns) / 1e9);
    return buf;
}

std::optional<ChosenReport> report_at_or_before(Recording& rec, std::optional<int64_t> t_ns) {
    // Only the chosen report is decoded (an hour of reports is thousands):
    // from the last report backwards to the first at or before t_ns.
    // The reader keeps a report's time only: the chosen one is read again,
    // whole (record/recording.h).
    std::vector<size_t> reports;
    for (size_t i = 0; i < rec.records.size(); i++)
        if (rec.records[i].value("type", "") == "report") reports.push_back(i);
    for (size_t i = reports.size(); i-- > 0;) {
        const nlohmann::json& r = rec.records[reports[i]];
        const int64_t t = record_time(r);
        if (t_ns && t > *t_ns) continue;
        // A report of a newer memtop may fail to decode: it is skipped, as
        // the reader skips a record type it does not know.
        try {
            ChosenReport c;
            c.report = decode_report(whole_report(rec, reports[i]));
            c.time_ns = t;
            c.number = i + 1;
            c.reports = reports.size();
            return c;
        } catch (const std::exception& e) {
            rec.problem += (rec.problem.empty() ? "" : "; ") + std::string(e.what());
        }
    }
    return std::nullopt;
}

std::optional<HeapPeak> heap_peak(const Recording& rec, std::optional<uint32_t> pid, PeakOf of) {
    const bool rss = of == PeakOf::Rss;
    // Every heap (or RSS) number of every process, in time order.
    struct Seen {
        uint32_t pid;
        int64_t time_ns, bytes;
        bool in_report;
    };
    std::vector<Seen> seen;
    auto bytes_of = [&](const ProcPoint& p, bool in_report) -> std::optional<int64_t> {
        if (of == PeakOf::Python) {
            if (!p.holds(ProcPoint::kPy)) return std::nullopt;
            return p.py_bytes;
        }
        if (!rss) {
            if (!p.holds(ProcPoint::kHeap) || !p.heap_traced) return std::nullopt;
            return p.heap_bytes;
        }
        if (!in_report) {
            if (!p.holds(ProcPoint::kRssBytes)) return std::nullopt;
            return p.rss_bytes;
        }
        if (!p.holds(ProcPoint::kRssFile | ProcPoint::kRssAnon | ProcPoint::kRssShmem)) return std::nullopt;
        return p.rss_file + p.rss_anon + p.rss_shmem;
    };
    for (size_t i = 0; i < rec.records.size() && i < rec.points.size(); i++) {
        const nlohmann::json& r = rec.records[i];
        const std::string type = r.value("type", "");
        if (type != "sample" && type != "report") continue;
        for (const auto& p : rec.points[i]) {
            auto bytes = bytes_of(p, type == "report");
            if (!bytes) continue;
            if (pid && p.pid != *pid) continue;
            seen.push_back({p.pid, record_time(r), *bytes, type == "report"});
        }
    }
    if (seen.empty()) return std::nullopt;
    // Whose peak: the given pid's, or the highest heap's (the earliest of equals).
    std::stable_sort(seen.begin(), seen.end(), [](const Seen& a, const Seen& b) { return a.time_ns < b.time_ns; });
    auto top =
        std::max_element(seen.begin(), seen.end(), [](const Seen& a, const Seen& b) { return a.bytes < b.bytes; });
    HeapPeak peak{top->pid, top->bytes, top->time_ns, top->time_ns};
    for (auto it = top; it != seen.end(); ++it) {
        if (it->pid != peak.pid) continue;
        if (it->bytes != peak.heap_bytes) break;
        peak.until_ns = it->time_ns;
    }
    // The report nearest the peak in bytes: a peak shorter than the report
    // interval (a burst of temporaries between two reports) is in no report.
    const Seen* best = nullptr;
    for (const Seen& s : seen)
        if (s.in_report && s.pid == peak.pid && (!best || s.bytes > best->bytes)) best = &s;
    if (best) peak.report_ns = best->time_ns;
    return peak;
}

}  // namespace memtop
