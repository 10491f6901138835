// Recordings (user/record): the report codec loses nothing any view shows,
// and the gzip'd JSON-lines stream reads up to its last whole record when
// cut anywhere or damaged.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include <catch2/catch.hpp>

#include "record/recording.h"
#include "record/report_codec.h"
#include "util/errors.h"
#include "views/export/folded.h"
#include "views/export/pprof.h"
#include "views/format.h"
#include "views/json.h"
#include "views/text.h"

using namespace memtop;
using nlohmann::json;

namespace {

Report full_report() {
    Report r;
    r.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
    r.final = true;
    r.self = {12345678, 3456789, 1.5, 2.25, 25, 4096};
    r.host = MemInfo{1 << 30, 1 << 28, 1 << 29, 1 << 20, 1 << 19};
    ProcessStats p;
    p.pid = 42, p.epoch = 3, p.comm = "app";
    p.heap_bytes = 3000, p.heap_peak_bytes = 9000, p.allocs_total = 7, p.frees_total = 4;
    p.rss = RssStats{100, 200, 300, 400, 700};
    p.growth_bytes = 4096, p.growth_rate = 2048.5, p.growing = true;
    p.has_identity = true, p.cgroup = "/system.slice/app.service", p.container = "abc", p.nspid = 7;
    p.mapped_known = true, p.mapped_bytes = 1 << 20, p.mapped_peak_bytes = 2 << 20, p.mm_id = 9;
    p.py_bytes = 3200, p.py_peak_bytes = 6400, p.py_allocs_total = 200, p.py_frees_total = 100, p.py_sampled = true;
    ProcessStats q;
    q.pid = 43, q.comm = "idle", q.heap_traced = false, q.exited = true;
    r.processes = {p, q};
    ReportStack s;
    s.stats = {42, 3, 5, 3000, 3, 3000, 3, 2, 128};
    s.ages = {{1, 1000, 1}, {10, 0, 0}, {60, 2000, 2}, {600, 0, 0}, {3600, 0, 0}, {-1, 0, 0}};
    s.used_bytes = 3072;  // glibc footprint (model/footprint.h)
    s.ips = {0x401234, 0x401400};
    Frame f;
    f.address = 0x401234, f.function = "leak", f.offset = 0x14, f.module = "/usr/bin/app", f.file = "app.c",
    f.line = 20;
    f.inlined = {{"helper", "helper.h", 5}};
    f.mapping = FrameMapping{0x400000, 0x500000, 0, "abcd"};
    Frame g;
    g.address = 0x401400;
    s.frames = {f, g};
    s.complete = true;
    r.stacks = {s};
    r.growth_stacks = {s};
    r.mappings = {s};
    r.all_stacks = {s, s};
    r.all_stacks[1].stats.bytes = 0;
    r.lost[Lost::stack_map_full] = 3;
    r.stack_order = StackOrder::Temporary;
    r.min_age = 2.5;
    r.unwind.tables = true, r.unwind.stacks = 4, r.unwind.incomplete = 1;
    r.unwind.incomplete_by_module = {{"/usr/lib/libx.so", 1}};
    r.unwind.table_files = 2, r.unwind.table_rows = 300, r.unwind.table_capacity = 1000, r.unwind.table_bytes = 2400;
    r.lines = LineReport{"app.c", "/src/app.c", {{20, "leak", 3000, 3, 3000, 3}}};
    r.perf_maps = {PerfMapNote{42, "/tmp/perf-7.map", "", 10, 1, 2, 3, 4},
                   PerfMapNote{43, "/tmp/perf-43.map", "a symlink (not followed)", 0, 0, 0, 0, 0}};
    r.symbol_files = {{"/usr/bin/app", "DWARF unreadable (the unit at .debug_info offset 0)"}};
    // Python's object domain (--python-objects).
    ReportStack py = s;
    py.stats = {42, 3, 11, 3200, 100, 6400, 200};
    Frame pyf;
    pyf.kind = FrameKind::Python, pyf.address = 0x7f00aa, pyf.function = "build", pyf.file = "app.py", pyf.line = 12;
    py.frames = {pyf, g};
    py.ages.clear(), py.used_bytes.reset();
    r.python_stacks = {py};
    r.all_python_stacks = {py, py};
    r.all_python_stacks[1].stats.stack_id = 12, r.all_python_stacks[1].stats.bytes = 0;
    r.python_sites = 250, r.python_sites_skipped = 3, r.python_sampled = true;
    r.python_notes = {"pid 42: a note"};
    return r;
}

std::string temp_path() {
    char tmpl[] = "/tmp/memtop-record-test-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    unlink(tmpl);  // a fresh name: RecordingWriter only creates files, never opens one that is there
    return tmpl;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

}  // namespace

TEST_CASE("report codec: a decoded report shows exactly what the original showed", "[record]") {
    Report r = full_report();
    // Through text, as a file holds it.
    Report back = decode_report(json::parse(encode_report(r).dump()));
    CHECK(render_json(back) == render_json(r));
    CHECK(render_text(back) == render_text(r));
    CHECK(encode_pprof(back, back.all_stacks) == encode_pprof(r, r.all_stacks));
    CHECK(render_folded(back, back.all_stacks) == render_folded(r, r.all_stacks));
    CHECK(back.stacks[0].frames[0].mapping->build_id == "abcd");
    // The Python domain, in every view that shows it.
    CHECK(encode_pprof(back, back.all_stacks, back.all_python_stacks) ==
          encode_pprof(r, r.all_stacks, r.all_python_stacks));
    CHECK(render_folded(back, back.all_stacks, back.all_python_stacks) ==
          render_folded(r, r.all_stacks, r.all_python_stacks));
    CHECK(render_text(back).find("python domain (pymalloc, not in HEAP; ESTIMATES, sampled): pid 42: "
                                 "3.1 KiB outstanding in 100 objects, peak 6.2 KiB") != std::string::npos);
    CHECK(back.processes[0].py_bytes == 3200);
    CHECK(back.processes[0].py_peak_bytes == 6400);
    CHECK(back.processes[0].py_allocs_total == 200);
    CHECK(back.processes[0].py_frees_total == 100);
    CHECK(back.processes[0].py_sampled);
    REQUIRE(back.python_stacks.size() == 1);
    CHECK(back.python_stacks[0].frames[0].kind == FrameKind::Python);
    CHECK(back.python_stacks[0].frames[0].line == 12);
    CHECK(back.all_python_stacks.size() == 2);
    CHECK(back.python_sites == 250);
    CHECK(back.python_sites_skipped == 3);
    CHECK(back.python_sampled);
    // A recording from before the Python domain was recorded: none, the rest as it was.
    json before_python = encode_report(r);
    before_python.erase("python");
    for (auto& p : before_python["processes"])
        for (const char* k : {"py_bytes", "py_peak_bytes", "py_allocs_total", "py_frees_total", "py_sampled"})
            p.erase(k);
    Report old = decode_report(before_python);
    CHECK(old.python_stacks.empty());
    CHECK(old.all_python_stacks.empty());
    CHECK(old.python_sites == 0);
    CHECK_FALSE(old.python_sampled);
    CHECK(old.processes[0].py_bytes == 0);
    CHECK(old.processes[0].py_allocs_total == 0);
    CHECK_FALSE(old.processes[0].py_sampled);
    CHECK(old.processes[0].heap_bytes == 3000);
    CHECK(render_text(old).find("python domain") == std::string::npos);
    // A recording from before perf_maps and symbol_files still decodes.
    json older = encode_report(r);
    older.erase("perf_maps");
    older.erase("symbol_files");
    CHECK(decode_report(older).perf_maps.empty());
    json broken = encode_report(r);
    broken.erase("processes");
    CHECK_THROWS_WITH(decode_report(broken), Catch::Contains("malformed report"));
}

TEST_CASE("recording: every prefix of a file reads its whole records, and says it is cut", "[record]") {
    std::string path = temp_path();
    std::vector<json> written;
    {
        RecordingWriter w(path, {{"mode", "test"}});
        for (int i = 0; i < 20; i++) {
            written.push_back({{"type", "sample"}, {"i", i}, {"pad", std::string(i * 37, 'x')}});
            w.write(written.back());
        }
        w.close();
    }
    Recording whole = read_recording(path);
    CHECK(whole.problem.empty());
    CHECK(whole.header["mode"] == "test");
    CHECK(whole.header["version"] == kRecordingVersion);
    CHECK(whole.records == written);

    std::string data = slurp(path);
    size_t read_some = 0;
    for (size_t cut = 0; cut < data.size(); cut++) {
        spit(path, data.substr(0, cut));
        try {
            Recording part = read_recording(path);
            INFO("cut at " << cut << " of " << data.size());
            CHECK_FALSE(part.problem.empty());
            REQUIRE(part.records.size() <= written.size());
            CHECK(std::equal(part.records.begin(), part.records.end(), written.begin()));
            read_some++;
        } catch (const MemtopError& e) {
            // Only before the header is whole.
            CHECK(std::string(e.what()).find("not a memtop recording") != std::string::npos);
        }
    }
    CHECK(read_some > data.size() / 2);
    unlink(path.c_str());
}

TEST_CASE("recording: damaged bytes are said, never crash, and never pass for the original", "[record]") {
    std::string path = temp_path();
    std::vector<json> written;
    {
        RecordingWriter w(path, {{"mode", "test"}});
        for (int i = 0; i < 10; i++) {
            written.push_back({{"type", "report"}, {"i", i}});
            w.write(written.back());
        }
    }
    std::string data = slurp(path);
    std::mt19937 rng(13);
    int inputs = 0;
    for (; inputs < 2000; inputs++) {
        std::string bad = data;
        int flips = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < flips; k++) bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
        spit(path, bad);
        try {
            Recording r = read_recording(path);
            // Undamaged records are a prefix; whatever was damaged is said
            // (gzip's CRC) unless the flip was in a header field gzip ignores.
            if (r.problem.empty()) CHECK(r.records == written);
        } catch (const MemtopError&) {
            // The header itself was damaged: one message, no crash.
        }
    }
    CHECK(inputs == 2000);
    spit(path, "not gzip at all\n");
    CHECK_THROWS_WITH(read_recording(path), Catch::Contains("not a memtop recording"));
    unlink(path.c_str());
    CHECK_THROWS_WITH(read_recording(path), Catch::Contains("No such file"));
}

// What tests/fuzz/fuzz_recording found (its inputs are in
// tests/fuzz/regressions/recording-*): a recording is input from another
// host, so each of these is one error or a shown report, never a crash or
// undefined behaviour.
// `text` gzip'd into `path`, as a recording holds its lines.
void gz_spit(const std::string& path, const std::string& text) {
    gzFile g = gzopen(path.c_str(), "wb");
    REQUIRE(g);
    REQUIRE(gzwrite(g, text.data(), unsigned(text.size())) == int(text.size()));
    REQUIRE(gzclose(g) == Z_OK);
}

TEST_CASE("recording: a header whose type or version is of another JSON type is not a crash", "[record]") {
    std::string path = temp_path();
    for (const char* header : {"{\"type\":5}", "{\"type\":null,\"version\":1}", "[1,2]", "\"memtop-recording\""}) {
        INFO(header);
        gz_spit(path, std::string(header) + "\n");
        CHECK_THROWS_WITH(read_recording(path), Catch::Contains("not a memtop recording"));
    }
    // A version that is not a number reads as version 0: no "newer" claim.
    gz_spit(path, "{\"type\":\"memtop-recording\",\"version\":\"9\"}\n");
    CHECK(read_recording(path).problem.empty());
    unlink(path.c_str());
}

TEST_CASE("report codec: a number with a fraction in a whole-number field is malformed, not converted", "[record]") {
    json j = encode_report(full_report());
    // 1e35 does not fit any integer: converting it was undefined behaviour.
    json bad = j;
    bad["time_ns"] = 1e35;
    CHECK_THROWS_WITH(decode_report(bad), Catch::Contains("time_ns is not a whole number"));
    bad = j;
    bad["processes"][0]["allocs_total"] = -2.5;
    CHECK_THROWS_WITH(decode_report(bad), Catch::Contains("allocs_total is not a whole number"));
    // The fields memtop writes with a fraction still decode.
    bad = j;
    bad["processes"][0]["growth_rate"] = 1e300;
    CHECK(decode_report(bad).processes[0].growth_rate == 1e300);
}

TEST_CASE("recording: a process number that fits no int64 is left out, not converted", "[record]") {
    // -9.6e18 and 1e300 fit no int64_t: casting them was undefined
    // behaviour (tests/fuzz/regressions/recording-point-float-out-of-range).
    std::string path = temp_path();
    const std::string header = "{\"type\":\"memtop-recording\",\"version\":1,\"start_ns\":1000}\n";
    gz_spit(path, header +
                      "{\"type\":\"sample\",\"time_ns\":1500,\"processes\":[{\"pid\":7,\"epoch\":1,"
                      "\"heap_bytes\":-9.6e18,\"rss_bytes\":2.5,\"mapped_bytes\":1e300}]}\n"
                      "{\"type\":\"sample\",\"time_ns\":2000,\"processes\":[{\"pid\":7,\"epoch\":1,"
                      "\"heap_bytes\":18446744073709551615}]}\n");
    Recording rec = read_recording(path);
    INFO(rec.problem);
    CHECK(rec.problem.empty());
    REQUIRE(rec.records.size() == 2);
    REQUIRE_FALSE(rec.points[0].empty());
    const ProcPoint& p = rec.points[0][0];
    CHECK_FALSE(p.holds(ProcPoint::kHeap));
    CHECK_FALSE(p.holds(ProcPoint::kMapped));
    CHECK(p.holds(ProcPoint::kRssBytes));
    CHECK(p.rss_bytes == 2);                                                     // a fraction is truncated
    for (const auto& q : rec.points[1]) CHECK_FALSE(q.holds(ProcPoint::kHeap));  // 2^64 - 1 does not fit
    unlink(path.c_str());
}

TEST_CASE("views: the most negative byte count is shown, without overflow", "[record]") {
    Report r = full_report();
    r.processes[0].heap_bytes = INT64_MIN;
    CHECK(render_text(r).find("-8388608.0 TiB") != std::string::npos);  // units stop at TiB
    CHECK(human_bytes(INT64_MIN) == "-8388608.0 TiB");
    CHECK(human_bytes(-5) == "-5 B");
    CHECK(human_bytes(INT64_MAX) == "8388608.0 TiB");
}
