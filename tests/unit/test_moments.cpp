// Moments of a recording (record/moments.h, app/report_query.h): TIME as
// seconds or RFC 3339, the report at or before a moment, a process's peak
// heap, and one clear error for a moment the recording does not hold.
#include <catch2/catch.hpp>

#include "app/report_query.h"
#include "record/moments.h"
#include "record/report_codec.h"
#include "util/errors.h"

using namespace memtop;
using nlohmann::json;

namespace {

constexpr int64_t kStart = 1700000000000000000;  // 2023-11-14T22:13:20Z
constexpr int64_t kSec = 1000000000;

json sample(int64_t t, std::vector<std::pair<uint32_t, int64_t>> heaps) {
    json procs = json::array();
    for (auto [pid, heap] : heaps) procs.push_back({{"pid", pid}, {"epoch", 1}, {"heap_bytes", heap}});
    return {{"type", "sample"}, {"time_ns", t}, {"processes", procs}};
}

json report(int64_t t, uint32_t pid, int64_t heap) {
    Report r;
    r.time = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(t)));
    ProcessStats p;
    p.pid = pid, p.epoch = 1, p.comm = "app", p.heap_bytes = heap;
    r.processes = {p};
    return {{"type", "report"}, {"report", encode_report(r)}};
}

// Reports at +1, +2, +3 s; pid 7's heap peaks at +1.5 s (samples), pid 8's
// at +2.5 s with more.
std::vector<json> records() {
    return {sample(kStart + kSec / 2, {{7, 100}}),
            report(kStart + kSec, 7, 100),
            sample(kStart + 3 * kSec / 2, {{7, 900}, {8, 50}}),
            report(kStart + 2 * kSec, 7, 300),
            sample(kStart + 5 * kSec / 2, {{7, 900}, {8, 5000}}),
            report(kStart + 3 * kSec, 8, 10),
            sample(kStart + 4 * kSec, {{7, 0}})};
}

Recording recording(std::vector<json> recs = records()) {
    return recording_of(
        {{"type", "memtop-recording"}, {"version", 1}, {"start", "2023-11-14T22:13:20Z"}, {"start_ns", kStart}},
        std::move(recs));
}

}  // namespace

TEST_CASE("TIME reads as seconds since the start or as RFC 3339", "[record][moments]") {
    CHECK(parse_moment("2.5", kStart, "--at") == kStart + 5 * kSec / 2);
    CHECK(parse_moment("0", kStart, "--at") == kStart);
    CHECK(parse_moment("2023-11-14T22:13:21.25Z", kStart, "--at") == kStart + kSec + kSec / 4);
    CHECK(parse_moment("2023-11-14T23:13:21+01:00", kStart, "--at") == kStart + kSec);
    CHECK(parse_moment("2023-11-14T22:13:20.000000001z", kStart, "--at") == kStart + 1);
    for (const char* bad :
         {"", "abc", "-1", "0x10", "inf", "nan", "2.5x", "2023-11-14T22:13:21", "2023-13-14T22:13:21Z"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_moment(bad, kStart, "--at"), MemtopError);
    }
    try {
        parse_moment("soon", kStart, "--at");
    } catch (const MemtopError& e) {
        CHECK(e.exit_code() == kExitUsage);
        CHECK(std::string(e.what()).rfind("--at soon: not a time", 0) == 0);
    }
}

TEST_CASE("the start is the header's start_ns, else its RFC 3339 start", "[record][moments]") {
    Recording rec = recording();
    CHECK(recording_start_ns(rec) == kStart);
    rec.header.erase("start_ns");
    CHECK(recording_start_ns(rec) == kStart);
    rec.header.erase("start");
    CHECK(recording_start_ns(rec) == kStart + kSec / 2);  // the first record
    CHECK(recording_end_ns(rec) == kStart + 4 * kSec);
    CHECK(since_start(kStart + 2500000000, kStart) == "+2.50 s");
}

TEST_CASE("the report at or before a moment", "[record][moments]") {
    Recording rec = recording();
    auto last = report_at_or_before(rec, std::nullopt);
    REQUIRE(last);
    CHECK(last->number == 3);
    CHECK(last->reports == 3);
    CHECK(last->time_ns == kStart + 3 * kSec);
    auto at2 = report_at_or_before(rec, kStart + 2 * kSec);  // exactly at a report: that one
    REQUIRE(at2);
    CHECK(at2->number == 2);
    CHECK(at2->report.processes.at(0).heap_bytes == 300);
    auto between = report_at_or_before(rec, kStart + 2 * kSec + kSec / 2);
    REQUIRE(between);
    CHECK(between->number == 2);
    CHECK_FALSE(report_at_or_before(rec, kStart + kSec - 1));

    // A report that does not decode is skipped and said.
    rec.records[3]["report"].erase("processes");
    auto skipped = report_at_or_before(rec, kStart + 2 * kSec);
    REQUIRE(skipped);
    CHECK(skipped->number == 1);
    CHECK(skipped->reports == 3);
    CHECK(rec.problem.find("malformed report") != std::string::npos);
}

TEST_CASE("a process's peak heap: its highest sample or report, the earliest moment of it", "[record][moments]") {
    Recording rec = recording();
    auto p7 = heap_peak(rec, 7);
    REQUIRE(p7);
    CHECK(p7->pid == 7);
    CHECK(p7->heap_bytes == 900);
    CHECK(p7->time_ns == kStart + 3 * kSec / 2);
    CHECK(p7->until_ns == kStart + 3 * kSec / 2);  // the report at +2 s saw 300
    CHECK(p7->report_ns == kStart + 2 * kSec);     // the highest a report saw (300, not +1 s's 100)
    auto any = heap_peak(rec, std::nullopt);
    REQUIRE(any);
    CHECK(any->pid == 8);
    CHECK(any->heap_bytes == 5000);
    CHECK(any->time_ns == kStart + 5 * kSec / 2);
    CHECK(any->report_ns == kStart + 3 * kSec);  // the one report holding pid 8
    CHECK_FALSE(heap_peak(rec, 9));

    // A peak that lasts: the report made while it lasted shows it.
    std::vector<json> recs = records();
    recs[4]["processes"][0]["heap_bytes"] = 300;  // +2.5 s: pid 7 back at the report's 300
    recs[2]["processes"][0]["heap_bytes"] = 300;  // +1.5 s
    rec = recording(recs);
    auto plateau = heap_peak(rec, 7);
    REQUIRE(plateau);
    CHECK(plateau->heap_bytes == 300);
    CHECK(plateau->time_ns == kStart + 3 * kSec / 2);
    CHECK(plateau->until_ns == kStart + 5 * kSec / 2);
    ReportQuery q;
    q.peak = "7";
    auto chosen = choose_report(rec, "f.gz", q);
    REQUIRE(chosen);
    CHECK(chosen->number == 2);  // +2 s, inside the plateau
}

TEST_CASE("report --at and --peak choose a report, or say in one line why not", "[record][moments]") {
    Recording rec = recording();
    ReportQuery q;
    q.at = "1.5";
    auto at = choose_report(rec, "f.gz", q);
    REQUIRE(at);
    CHECK(at->number == 1);
    q.at = "2023-11-14T22:13:22.5Z";
    CHECK(choose_report(rec, "f.gz", q)->number == 2);

    auto fails = [&](const ReportQuery& query, const std::string& says) {
        try {
            choose_report(rec, "f.gz", query);
            FAIL("no error for " + says);
        } catch (const MemtopError& e) {
            INFO(e.what());
            CHECK(e.exit_code() == kExitUsage);
            CHECK(std::string(e.what()).find(says) != std::string::npos);
        }
    };
    q.at = "4.5";
    fails(q, "--at 4.5: after the end of f.gz (its last record is at +4.00 s)");
    q.at = "0.5";
    fails(q, "--at 0.5: f.gz has no report at or before +0.50 s (its first is at +1.00 s)");

    ReportQuery peak;
    peak.peak = "7";
    // Peak at +1.5 s, shorter than a report interval: the report nearest it
    // in bytes (+2 s's 300), not the one before it (+1 s's 100).
    auto p7 = choose_report(rec, "f.gz", peak);
    REQUIRE(p7);
    CHECK(p7->number == 2);
    peak.peak = "";
    CHECK(choose_report(rec, "f.gz", peak)->number == 3);  // pid 8 peaks at +2.5 s; +3 s's report holds it
    // A process no report holds: the report at or before its peak's end.
    std::vector<json> recs = records();
    recs[5] = report(kStart + 3 * kSec, 7, 10);
    Recording no8 = recording(recs);
    CHECK(choose_report(no8, "f.gz", peak)->number == 2);
    peak.peak = "9";
    fails(peak, "--peak 9: f.gz holds no heap of pid 9");
    peak.peak = "x";
    fails(peak, "--peak x: not a process id");

    ReportQuery both;
    both.at = "1";
    both.peak = "";
    CHECK_THROWS_AS(check_report_query(both, ExportFiles{}), MemtopError);
}
