// The diff of two reports (record/diff.h, record/diff_view.h): stacks
// matched by what their frames name (never by address), the change per
// stack, largest growth first, and the pprof encoding of the changes with
// negative values.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "profile.pb.h"
#include "record/diff.h"
#include "record/diff_view.h"
#include "views/export/pprof.h"

using namespace memtop;

namespace {

Frame frame(uint64_t address, const char* fn, int line, uint64_t map_start = 0x400000) {
    Frame f;
    f.address = address;
    f.function = fn;
    f.offset = address & 0xff;
    f.module = "/usr/bin/app";
    f.file = "app.c";
    f.line = line;
    f.mapping = FrameMapping{map_start, map_start + 0x100000, 0, "abcd"};
    return f;
}

ReportStack stack(uint32_t pid, uint64_t id, int64_t bytes, int64_t allocs, uint64_t total_bytes, uint64_t total,
                  std::vector<Frame> frames) {
    ReportStack s;
    s.stats = {pid, 1, id, bytes, allocs, total_bytes, total};
    s.frames = std::move(frames);
    return s;
}

Report report(uint32_t pid, std::vector<ReportStack> stacks) {
    Report r;
    ProcessStats p;
    p.pid = pid, p.epoch = 1, p.comm = "app";
    r.processes = {p};
    r.all_stacks = std::move(stacks);
    return r;
}

}  // namespace

TEST_CASE("a diff matches stacks by names across runs (ASLR), the largest growth first", "[record][diff]") {
    // BASE: pid 10, the program mapped at 0x400000; NEW: pid 20, mapped at
    // 0x7f0000 (other addresses, same code).
    Report base = report(10, {stack(10, 1, 1000, 2, 1000, 2, {frame(0x401010, "keep", 5), frame(0x401200, "main", 30)}),
                              stack(10, 2, 300, 3, 300, 3, {frame(0x401050, "shrink", 9), frame(0x401210, "main", 31)}),
                              stack(10, 3, 0, 0, 640, 10, {frame(0x401080, "temp", 12), frame(0x401220, "main", 32)})});
    Report now = report(
        20,
        {stack(20, 7, 1000, 2, 1000, 2, {frame(0x7f1010, "keep", 5, 0x7f0000), frame(0x7f1200, "main", 30, 0x7f0000)}),
         stack(20, 8, 100, 1, 300, 3, {frame(0x7f1050, "shrink", 9, 0x7f0000), frame(0x7f1210, "main", 31, 0x7f0000)}),
         stack(20, 9, 0, 0, 1280, 20, {frame(0x7f1080, "temp", 12, 0x7f0000), frame(0x7f1220, "main", 32, 0x7f0000)}),
         stack(20, 5, 42000, 6, 42000, 6,
               {frame(0x7f10a0, "leak", 20, 0x7f0000), frame(0x7f1230, "main", 33, 0x7f0000)})});
    ReportDiff d = diff_reports(base, now);
    REQUIRE(d.stacks.size() == 2);
    CHECK(d.unchanged == 1);  // keep
    REQUIRE(d.churn.size() == 1);
    CHECK(d.churn[0].frames[0].function == "temp");
    CHECK(d.churn[0].change().bytes == 0);
    CHECK(d.churn[0].change().alloc_bytes_total == 640);
    CHECK(d.churn[0].change().allocs_total == 10);

    const DiffStack& grew = d.stacks[0];
    CHECK(grew.frames[0].function == "leak");
    CHECK(grew.pid == 20);
    CHECK(grew.comm == "app");
    CHECK(grew.change().bytes == 42000);
    CHECK(grew.change().allocs == 6);
    CHECK(grew.base.bytes == 0);
    const DiffStack& shrank = d.stacks[1];
    CHECK(shrank.frames[0].function == "shrink");
    CHECK(shrank.frames[0].address == 0x7f1050);  // NEW names it
    CHECK(shrank.change().bytes == -200);
    CHECK(shrank.change().allocs == -2);
    CHECK(shrank.change().alloc_bytes_total == 0);

    std::string text = render_diff_text(d, {"new.gz", "base.gz"});
    INFO(text);
    CHECK(text.find("Outstanding heap: +40.8 KiB (41800 B) in +4 allocations") != std::string::npos);
    CHECK(text.find("#1  app (pid 20): +41.0 KiB outstanding (42000 B, 0 B -> 41.0 KiB) in +6 allocations") !=
          std::string::npos);
    CHECK(text.find("#2  app (pid 20): -200 B outstanding (-200 B, 300 B -> 100 B) in -2 allocations") !=
          std::string::npos);
    CHECK(text.find("leak (app)  app.c:20") != std::string::npos);
    CHECK(text.find("1 only allocated and freed more, 1 unchanged") != std::string::npos);

    auto j = nlohmann::json::parse(render_diff_json(d, {"new.gz", "base.gz"}));
    CHECK(j["total"]["bytes"] == 41800);
    CHECK(j["unchanged_stacks"] == 1);
    CHECK(j["churn_stacks"] == 1);
    REQUIRE(j["stacks"].size() == 2);
    CHECK(j["stacks"][0]["bytes"] == 42000);
    CHECK(j["stacks"][0]["new"]["bytes"] == 42000);
    CHECK(j["stacks"][0]["frames"][0]["function"] == "leak");
    CHECK(j["stacks"][1]["bytes"] == -200);
    CHECK(j["stacks"][1]["base"]["allocs"] == 3);
}

TEST_CASE("diff keys: names, never addresses; a nameless frame by its file offset", "[record][diff]") {
    Frame a = frame(0x401010, "f", 5), b = frame(0x7f1014, "f", 5, 0x7f0000);
    CHECK(diff_key("app", {a}, true) == diff_key("app", {b}, true));  // other address and offset in f
    Frame c = frame(0x401010, "f", 6);
    CHECK(diff_key("app", {a}, true) != diff_key("app", {c}, true));    // another line
    CHECK(diff_key("app", {a}, true) != diff_key("other", {a}, true));  // another program
    a.inlined = {{"g", "g.h", 3}};
    CHECK(diff_key("app", {a}, true) != diff_key("app", {b}, true));  // another inline chain

    Frame n1 = frame(0x401010, "x", 0), n2 = frame(0x7f1010, "x", 0, 0x7f0000);
    n1.function.reset(), n2.function.reset(), n1.file.reset(), n2.file.reset(), n1.line.reset(), n2.line.reset();
    CHECK(diff_key("app", {n1}, true) == diff_key("app", {n2}, true));  // the same file offset
    n2.address += 4;
    CHECK(diff_key("app", {n1}, true) != diff_key("app", {n2}, true));

    Frame p1, p2;  // perf-map names, written by another pid each run
    p1.address = 0x1000, p1.function = "jit_fn", p1.module = "[perf-100.map]";
    p2.address = 0x2000, p2.function = "jit_fn", p2.module = "[perf-200.map]";
    CHECK(diff_key("app", {p1}, true) == diff_key("app", {p2}, true));
    CHECK(diff_key("app", {}, false) != diff_key("app", {}, true));
}

TEST_CASE("the pprof of a diff holds the changes, negative ones too", "[record][diff]") {
    Report base = report(10, {stack(10, 2, 300, 3, 300, 3, {frame(0x401050, "shrink", 9)})});
    Report now = report(20, {stack(20, 8, 100, 1, 300, 3, {frame(0x401050, "shrink", 9)}),
                             stack(20, 5, 42000, 6, 42000, 6, {frame(0x4010a0, "leak", 20)})});
    Report r = diff_as_report(diff_reports(base, now), now);
    perftools::profiles::Profile p;
    REQUIRE(p.ParseFromString(encode_pprof(r, r.all_stacks)));
    REQUIRE(p.sample_size() == 2);
    std::map<std::string, std::vector<int64_t>> by_fn;
    for (const auto& s : p.sample()) {
        const auto& loc = p.location(static_cast<int>(s.location_id(0) - 1));
        const auto& fn = p.function(static_cast<int>(loc.line(0).function_id() - 1));
        by_fn[p.string_table(static_cast<int>(fn.name()))] = {s.value().begin(), s.value().end()};
    }
    // alloc_objects, alloc_space, inuse_objects, inuse_space
    CHECK(by_fn["leak"] == std::vector<int64_t>{6, 42000, 6, 42000});
    CHECK(by_fn["shrink"] == std::vector<int64_t>{0, 0, -2, -200});
}

TEST_CASE("a diff of the Python domain: its own totals and stacks, the rest as one stack", "[record][diff][python]") {
    auto pyframe = [](uint64_t code, const char* fn, int line) {
        Frame f;
        f.kind = FrameKind::Python;
        f.address = code;
        f.function = fn;
        f.file = "app.py";
        f.line = line;
        return f;
    };
    // BASE (pid 10) and NEW (pid 20): the same heap; the Python domain's
    // `grow` line holds 32,000 more bytes, `drop` 640 fewer, and the
    // stacks neither lists (the rest) allocated 100 more objects.
    Report base = report(10, {stack(10, 1, 1000, 2, 1000, 2, {frame(0x401010, "keep", 5)})});
    Report now = report(20, {stack(20, 7, 1000, 2, 1000, 2, {frame(0x7f1010, "keep", 5, 0x7f0000)})});
    base.all_python_stacks = {stack(10, 3, 3200, 100, 3200, 100, {pyframe(0x1000, "grow", 3)}),
                              stack(10, 4, 640, 20, 640, 20, {pyframe(0x1100, "drop", 7)})};
    now.all_python_stacks = {stack(20, 5, 35200, 1100, 35200, 1100, {pyframe(0x9000, "grow", 3)})};
    StackRemainder rest;
    rest.stacks = 40;
    rest.stats = {10, 1, 0, 0, 0, 5000, 500};
    base.python_rest = {rest};
    rest.stacks = 41;
    rest.stats = {20, 1, 0, 0, 0, 5600, 600};
    now.python_rest = {rest};
    ReportDiff d = diff_reports(base, now);
    CHECK(d.stacks.empty());  // the heap did not change
    REQUIRE(d.python);
    REQUIRE(d.python_stacks.size() == 2);
    CHECK(d.python_stacks[0].frames[0].function == "grow");
    CHECK(d.python_stacks[0].change().bytes == 32000);
    CHECK(d.python_stacks[0].change().allocs == 1000);
    CHECK(d.python_stacks[1].frames[0].function == "drop");
    CHECK(d.python_stacks[1].change().bytes == -640);
    REQUIRE(d.python_churn.size() == 1);  // the rest: 40 and 41 stacks, one key
    CHECK(d.python_churn[0].frames[0].function == kOtherPythonStacks);
    CHECK(d.python_churn[0].change().allocs_total == 100);
    CHECK(d.python_churn[0].change().alloc_bytes_total == 600);
    // The totals are the listed stacks' and the rest's: each side's domain.
    CHECK(d.python_base_total.bytes == 3840);
    CHECK(d.python_now_total.bytes == 35200);
    CHECK(d.python_now_total.allocs_total == 1700);

    std::string text = render_diff_text(d, {"new.gz", "base.gz"});
    INFO(text);
    CHECK(text.find("Outstanding heap: 0 B (0 B) in 0 allocations") != std::string::npos);
    CHECK(text.find("Python domain (pymalloc, not in the heap): +30.6 KiB (31360 B) in +980 objects; allocated in "
                    "all +31.2 KiB in +1080.") != std::string::npos);
    CHECK(text.find("#1  app (pid 20): +31.2 KiB outstanding (32000 B, 3.1 KiB -> 34.4 KiB) in +1000 objects") !=
          std::string::npos);
    CHECK(text.find("grow (?)  app.py:3") != std::string::npos);

    auto j = nlohmann::json::parse(render_diff_json(d, {"new.gz", "base.gz"}));
    CHECK(j["total"]["bytes"] == 0);
    CHECK(j["python"]["total"]["bytes"] == 31360);
    CHECK(j["python"]["churn_stacks"] == 1);
    REQUIRE(j["python"]["stacks"].size() == 2);
    CHECK(j["python"]["stacks"][0]["bytes"] == 32000);

    // The pprof of the diff: the Python changes under python_*, apart.
    Report r = diff_as_report(d, now);
    CHECK(r.all_stacks.empty());
    REQUIRE(r.all_python_stacks.size() == 3);
    CHECK(r.all_python_stacks[0].stats.bytes == 32000);
    CHECK(r.all_python_stacks[1].stats.bytes == -640);

    // Neither side with a Python domain: no Python part, in JSON too.
    ReportDiff heap_only = diff_reports(report(10, {}), report(20, {}));
    CHECK_FALSE(heap_only.python);
    CHECK_FALSE(nlohmann::json::parse(render_diff_json(heap_only, {"a", "b"})).contains("python"));
}
