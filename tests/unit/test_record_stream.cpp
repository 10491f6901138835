// Recordings of format version 2 (user/record/deltas.h) and the streaming
// reader: reports' stacks and samples written as changes read back as the
// whole reports and the points they were; version 1 files read as before;
// reading a long recording takes memory bounded by its live state, not by
// the file.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "record/deltas.h"
#include "record/moments.h"
#include "record/recording.h"
#include "record/report_codec.h"
#include "util/errors.h"

using namespace memtop;
using nlohmann::json;

namespace {

std::string temp_path() {
    char tmpl[] = "/tmp/memtop-stream-test-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    unlink(tmpl);  // a fresh name: recordings are only created, never opened where a file is
    return tmpl;
}

json stack(uint32_t pid, uint64_t id, int64_t bytes, const std::string& fn = "f") {
    return {{"stats",
             {{"pid", pid},
              {"epoch", 1},
              {"stack_id", id},
              {"bytes", bytes},
              {"allocs", bytes / 10},
              {"alloc_bytes_total", bytes * 2},
              {"allocs_total", bytes / 5},
              {"temp_allocs", 0},
              {"temp_bytes", 0}}},
            {"ips", {0x1000 + id}},
            {"frames", {{{"function", fn}, {"address", 0x1000 + id}}}},
            {"truncated", false},
            {"complete", true},
            {"ages", json::array()}};
}

json report(int64_t t, json stacks) {
    return {{"time_ns", t}, {"processes", json::array()}, {"all_stacks", std::move(stacks)}};
}

// all_stacks as the reader gives them back: ordered by pid, epoch, stack id.
json sorted(json stacks) {
    std::sort(stacks.begin(), stacks.end(), [](const json& a, const json& b) {
        return std::make_tuple(a["stats"]["pid"].get<uint32_t>(), a["stats"]["stack_id"].get<uint64_t>()) <
               std::make_tuple(b["stats"]["pid"].get<uint32_t>(), b["stats"]["stack_id"].get<uint64_t>());
    });
    return stacks;
}

// What the readers' peak resident memory may grow by, in KiB, over `bound`
// in a normal build. Under AddressSanitizer freed blocks stay resident in
// its quarantine (256 MiB by default) and every block has redzones and
// shadow: the bound there is looser by the quarantine, exact elsewhere.
#if defined(__SANITIZE_ADDRESS__)
#define MEMTOP_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEMTOP_TEST_ASAN 1
#endif
#endif
constexpr int64_t rss_bound_kib(int64_t bound) {
#ifdef MEMTOP_TEST_ASAN
    return bound + 256 * 1024;
#else
    return bound;
#endif
}

int64_t peak_rss_kib() {
    std::ifstream in("/proc/self/status");
    for (std::string l; std::getline(in, l);)
        if (l.rfind("VmHWM:", 0) == 0) return std::atoll(l.c_str() + 6);
    return -1;
}

}  // namespace

TEST_CASE("recording v2: reports' stacks as deltas read back whole, each of them", "[record]") {
    // New, changed numbers, changed frames, gone, back again, unchanged.
    std::vector<json> reports = {
        report(1000, {stack(7, 1, 100), stack(7, 2, 200)}),
        report(2000, {stack(7, 1, 100), stack(7, 2, 250), stack(8, 3, 30)}),
        report(3000, {stack(7, 2, 250, "renamed"), stack(8, 3, 30)}),
        report(4000, {stack(7, 1, 10), stack(8, 3, 0)}),
        report(5000, {stack(7, 1, 10), stack(8, 3, 0)}),
        report(6000, {stack(7, 1, 10), stack(7, 1, 10)}),  // a key twice: written whole
        report(7000, json::array()),
    };
    std::string path = temp_path();
    StackDeltaWriter deltas;
    std::vector<json> written;
    {
        RecordingWriter w(path, {{"mode", "test"}});
        for (const auto& r : reports) {
            json enc = r;
            deltas.encode(enc);
            written.push_back(enc);
            w.write({{"type", "report"}, {"report", enc}});
        }
    }
    // Only what changed is written: report 2 names stack 1 not at all, stack
    // 2 by its numbers alone, stack 3 whole.
    REQUIRE(written[1].contains("all_stacks_delta"));
    const json& d = written[1]["all_stacks_delta"]["changed"];
    REQUIRE(d.size() == 2);
    CHECK(d[0] == json({{"k", {7, 1, 2}}, {"n", {250, 25, 500, 50, 0, 0}}}));
    CHECK(d[1] == stack(8, 3, 30));
    CHECK(written[2]["all_stacks_delta"]["gone"] == json::array({json::array({7, 1, 1})}));
    CHECK(written[2]["all_stacks_delta"]["changed"][0]["frames"][0]["function"] == "renamed");
    CHECK(written[4]["all_stacks_delta"]["changed"].empty());
    CHECK(written[5].contains("all_stacks"));

    Recording rec = read_recording(path);
    CHECK(rec.problem.empty());
    CHECK(rec.header["version"] == kRecordingVersion);
    REQUIRE(rec.records.size() == reports.size());
    // The reader keeps each report's time, not its stacks.
    CHECK_FALSE(rec.records[0]["report"].contains("all_stacks"));
    CHECK(rec.stack_resets == std::vector<size_t>{5});  // the first is a delta from none
    for (size_t i = 0; i < reports.size(); i++) {
        INFO("report " << i);
        json whole = whole_report(rec, i);
        json want = reports[i];
        if (i != 5) want["all_stacks"] = sorted(want["all_stacks"]);
        CHECK(whole == want);
    }
    unlink(path.c_str());
}

TEST_CASE("recording v2: a delta naming a stack never seen is said, the reports before it read", "[record]") {
    std::string path = temp_path();
    {
        RecordingWriter w(path, {{"mode", "test"}});
        w.write({{"type", "report"}, {"report", report(1000, {stack(7, 1, 100)})}});
        json bad = report(2000, json::array());
        bad.erase("all_stacks");
        bad["all_stacks_delta"] = {{"changed", {{{"k", {9, 9, 9}}, {"n", {1, 1, 1, 1, 0, 0}}}}},
                                   {"gone", json::array()}};
        w.write({{"type", "report"}, {"report", bad}});
    }
    Recording rec = read_recording(path);
    CHECK(whole_report(rec, 0)["all_stacks"].size() == 1);
    CHECK_THROWS_WITH(whole_report(rec, 1), Catch::Contains("numbers for a stack not seen before"));
    unlink(path.c_str());
}

TEST_CASE("recording: a record whose type is not a string ends the reading with one clear problem", "[record]") {
    std::string path = temp_path();
    {
        RecordingWriter w(path, {{"mode", "test"}});
        w.write({{"type", "sample"}, {"time_ns", 5}, {"processes", json::array()}});
        w.write({{"type", 5}});
        w.write({{"type", "sample"}, {"time_ns", 6}, {"processes", json::array()}});
    }
    Recording rec = read_recording(path);
    CHECK(rec.records.size() == 1);
    CHECK(rec.problem == "record 3 is corrupt (its type is not a string)");
    unlink(path.c_str());
    {
        RecordingWriter w(path, {{"mode", "test"}});
        w.write({{"type", "report"}, {"report", {{"time_ns", "soon"}}}});
    }
    CHECK(read_recording(path).problem == "record 2 is corrupt (its report's time_ns is not a whole number)");
    unlink(path.c_str());
}

TEST_CASE("recording v2: samples of changed processes read as points where the numbers changed", "[record]") {
    std::string path = temp_path();
    SampleDeltaWriter deltas;
    auto entry = [](uint32_t pid, int64_t heap, int64_t rss) {
        return json{{"pid", pid}, {"epoch", 1}, {"heap_bytes", heap}, {"rss_bytes", rss}};
    };
    // pid 7: 100 for four samples, then 500; pid 8: 30 then gone after the third.
    std::vector<std::map<uint32_t, json>> at = {
        {{7, entry(7, 100, 4096)}, {8, entry(8, 30, 8192)}},
        {{7, entry(7, 100, 4096)}, {8, entry(8, 30, 8192)}},
        {{7, entry(7, 100, 4096)}, {8, entry(8, 30, 8192)}},
        {{7, entry(7, 100, 4096)}},
        {{7, entry(7, 500, 8192)}},
        {{7, entry(7, 500, 8192)}},
    };
    {
        RecordingWriter w(path, {{"mode", "test"}});
        for (size_t i = 0; i < at.size(); i++) {
            std::vector<uint32_t> gone;
            auto changed = deltas.changed(at[i], gone);
            w.write({{"type", "sample"}, {"time_ns", int64_t(i + 1) * 100}, {"processes", changed}, {"gone", gone}});
            if (i == 1) CHECK(changed.empty());
            if (i == 3) CHECK(gone == std::vector<uint32_t>{8});
        }
    }
    Recording rec = read_recording(path);
    REQUIRE(rec.records.size() == 6);
    // (time, pid, heap) of every point kept.
    std::vector<std::tuple<int64_t, uint32_t, int64_t>> points;
    REQUIRE(rec.points.size() == 6);
    for (size_t i = 0; i < rec.records.size(); i++) {
        CHECK_FALSE(rec.records[i].contains("processes"));  // in rec.points, not kept as JSON
        for (const auto& p : rec.points[i]) {
            CHECK(p.holds(ProcPoint::kHeap | ProcPoint::kRssBytes));
            points.emplace_back(rec.records[i]["time_ns"].get<int64_t>(), p.pid, p.heap_bytes);
        }
    }
    std::sort(points.begin(), points.end());
    using P = std::tuple<int64_t, uint32_t, int64_t>;
    // First seen; the old value held until the last observation before a
    // change or the end; the new value; its hold at the recording's end.
    CHECK(points ==
          std::vector<P>{P{100, 7, 100}, P{100, 8, 30}, P{300, 8, 30}, P{400, 7, 100}, P{500, 7, 500}, P{600, 7, 500}});
    // The peak and its plateau as a sample at every observation gave them.
    auto peak = heap_peak(rec, 7u);
    REQUIRE(peak);
    CHECK(peak->heap_bytes == 500);
    CHECK(peak->time_ns == 500);
    CHECK(peak->until_ns == 600);
    auto rss = heap_peak(rec, std::nullopt, PeakOf::Rss);
    REQUIRE(rss);
    // 8192 B: pid 8 from the first sample (until its last), pid 7 later: the earliest wins.
    CHECK(rss->pid == 8);
    CHECK(rss->heap_bytes == 8192);
    CHECK(rss->until_ns == 300);
    unlink(path.c_str());
}

TEST_CASE("recording: reading a long recording takes memory bounded by its live state, not the file", "[record]") {
    // 600 reports of 150 stacks each, whole (version 1: the largest a file
    // gets per report): about 55 MB of JSON in well under 1 MB of gzip. The
    // reader before streaming held the text and every record parsed (several
    // times the text); this one holds a line and one report's stacks.
    std::string path = temp_path();
    json stacks = json::array();
    for (uint64_t i = 0; i < 150; i++) stacks.push_back(stack(7, i, int64_t(i) * 8, std::string(400, 'x')));
    const int kReports = 600;
    {
        gzFile g = gzopen(path.c_str(), "wb1");
        REQUIRE(g);
        std::string header = json{{"type", "memtop-recording"}, {"version", 1}}.dump() + "\n";
        gzwrite(g, header.data(), unsigned(header.size()));
        for (int i = 0; i < kReports; i++) {
            std::string line =
                json{{"type", "report"}, {"report", report(int64_t(i + 1) * 1000000000, stacks)}}.dump() + "\n";
            REQUIRE(gzwrite(g, line.data(), unsigned(line.size())) == int(line.size()));
        }
        REQUIRE(gzclose(g) == Z_OK);
    }
    // In a child, whose peak resident memory is its own from the reset on.
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM := VmRSS
        const int64_t before = peak_rss_kib();
        Recording rec = read_recording(path);
        json last = whole_report(rec, rec.records.size() - 1);
        const int64_t grew = peak_rss_kib() - before;
        bool ok = rec.problem.empty() && rec.records.size() == kReports && last["all_stacks"].size() == 150;
        fprintf(stderr, "streaming reader: %d reports, peak RSS grew by %lld KiB\n", kReports,
                static_cast<long long>(grew));
        _exit(!ok ? 2 : grew < rss_bound_kib(48 * 1024) ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    unlink(path.c_str());
}

TEST_CASE("recording: a long system view's processes are kept as compact points, not JSON", "[record]") {
    // 900 reports (half an hour at -d 2) of 125 processes whose resident
    // memory changes at every report, as the system view's do: 112,500
    // points. Kept as JSON objects (memtop before ProcPoint) a point took
    // over a kilobyte, a map node per field: well over 100 MB here. As
    // ProcPoints, 112 bytes each.
    std::string path = temp_path();
    constexpr int kReports = 900, kProcs = 125;
    {
        RecordingWriter w(path, {{"mode", "system"}});
        Report r;
        r.processes.resize(kProcs);
        for (int i = 0; i < kReports; i++) {
            r.time = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000 + 2 * i));
            for (int k = 0; k < kProcs; k++) {
                ProcessStats& p = r.processes[size_t(k)];
                p.pid = uint32_t(100 + k), p.comm = "proc-" + std::to_string(k), p.heap_traced = false;
                p.rss = RssStats{1 << 20, int64_t(k + i) * 4096, 8192, 0, 4 << 20};
            }
            w.write({{"type", "report"}, {"report", encode_report(r)}});
        }
    }
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM := VmRSS
        const int64_t before = peak_rss_kib();
        Recording rec = read_recording(path);
        const int64_t grew = peak_rss_kib() - before;
        size_t points = 0;
        bool exact = rec.problem.empty() && rec.records.size() == kReports;
        for (size_t i = 0; i < rec.points.size(); i++) {
            points += rec.points[i].size();
            for (const auto& p : rec.points[i])
                exact &= p.rss_anon == int64_t(p.pid - 100 + i) * 4096 &&
                         rec.comm_of(p) == "proc-" + std::to_string(p.pid - 100);
        }
        exact &= points == size_t(kReports) * kProcs;
        // The series the plot draws: every report's RSS of every process.
        auto peak = heap_peak(rec, 100u, PeakOf::Rss);
        exact &= peak && peak->heap_bytes == (1 << 20) + int64_t(kReports - 1) * 4096 + 8192;
        fprintf(stderr, "compact points: %zu points of %d reports, peak RSS grew by %lld KiB\n", points, kReports,
                static_cast<long long>(grew));
        _exit(!exact ? 2 : grew < rss_bound_kib(32 * 1024) ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    unlink(path.c_str());
}

TEST_CASE("recording: the screen's save creates its file exclusively, 0600, never over another", "[record]") {
    std::string path = temp_path();
    std::ofstream(path) << "precious";
    CHECK_THROWS_WITH(RecordingWriter(path, {{"mode", "test"}}, true),
                      Catch::StartsWith("save " + path + ": something is already there"));
    unlink(path.c_str());
    REQUIRE(symlink("/tmp/memtop-stream-test-elsewhere", path.c_str()) == 0);
    CHECK_THROWS_WITH(RecordingWriter(path, {{"mode", "test"}}, true),
                      Catch::StartsWith("save " + path + ": something is already there"));
    CHECK(access("/tmp/memtop-stream-test-elsewhere", F_OK) != 0);
    unlink(path.c_str());
    {
        RecordingWriter w(path, {{"mode", "test"}}, true);
        w.write({{"type", "report"}, {"report", report(1000, json::array())}});
    }
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(whole_report(read_recording(path), 0)["time_ns"] == 1000);
    unlink(path.c_str());
}
