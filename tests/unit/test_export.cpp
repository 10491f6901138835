// The file exports of a report (user/views/export): the pprof profile read
// back with libprotobuf against the same .proto, and the folded stacks.
// `go tool pprof` reads memtop's real output in the runtime tests ([export]).
#include <catch2/catch.hpp>

#include "profile.pb.h"
#include "views/export/folded.h"
#include "views/export/pprof.h"

using namespace memtop;
namespace pb = perftools::profiles;

namespace {

Frame frame(uint64_t addr, const char* fn, const char* file, int line) {
    Frame f;
    f.address = addr;
    f.function = fn;
    f.module = "/usr/bin/app";
    f.file = file;
    f.line = line;
    f.mapping = FrameMapping{0x400000, 0x500000, 0x1000, "abcdef01"};
    return f;
}

// Two processes of one program: a leak with an inlined helper, a stack
// whose allocations were all freed, a stack the kernel could not store.
Report sample_report() {
    Report r;
    r.time = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    ProcessStats a, b;
    a.pid = 10, a.epoch = 1, a.comm = "app";
    b.pid = 20, b.epoch = 1, b.comm = "worker";
    r.processes = {a, b};
    ReportStack leak;
    leak.stats = {10, 1, 7, 3000, 3, 3000, 3};
    Frame site = frame(0x401234, "leak", "app.c", 20);
    site.inlined = {{"helper", "helper.h", 5}};  // helper inlined into leak, called at app.c:20
    leak.frames = {site, frame(0x401400, "main", "app.c", 40)};
    ReportStack freed;
    freed.stats = {20, 1, 8, 0, 0, 64000, 1000};
    freed.frames = {frame(0x401300, "temp", "app.c", 30), frame(0x401400, "main", "app.c", 40)};
    ReportStack lost;
    lost.stats = {20, 1, 0, 50, 1, 50, 1};
    r.lost[Lost::stack_map_full] = 2;
    r.all_stacks = {leak, freed, lost};
    return r;
}

const std::string& str(const pb::Profile& p, int64_t i) {
    return p.string_table(static_cast<int>(i));
}

const pb::Function& fn(const pb::Profile& p, uint64_t id) {
    return p.function(static_cast<int>(id - 1));
}

}  // namespace

TEST_CASE("pprof: Go's heap sample types, exact values, labels, inline chains, mappings", "[export]") {
    Report r = sample_report();
    pb::Profile p;
    REQUIRE(p.ParseFromString(gunzip(gzip(encode_pprof(r, r.all_stacks)))));
    REQUIRE(p.string_table(0).empty());
    REQUIRE(p.sample_type_size() == 4);
    const char* types[][2] = {
        {"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}};
    for (int i = 0; i < 4; i++) {
        CHECK(str(p, p.sample_type(i).type()) == types[i][0]);
        CHECK(str(p, p.sample_type(i).unit()) == types[i][1]);
    }
    CHECK(str(p, p.default_sample_type()) == "inuse_space");
    CHECK(str(p, p.period_type().type()) == "space");
    CHECK(p.period() == 1);
    CHECK(p.time_nanos() == 1700000000LL * 1000000000LL);
    bool said_lost = false;
    for (int64_t c : p.comment()) said_lost |= str(p, c).find("lost: 2 ") != std::string::npos;
    CHECK(said_lost);

    REQUIRE(p.sample_size() == 3);
    const pb::Sample& leak = p.sample(0);
    CHECK(std::vector<int64_t>(leak.value().begin(), leak.value().end()) == std::vector<int64_t>{3, 3000, 3, 3000});
    const pb::Sample& freed = p.sample(1);
    CHECK(std::vector<int64_t>(freed.value().begin(), freed.value().end()) == std::vector<int64_t>{1000, 64000, 0, 0});
    REQUIRE(leak.label_size() == 2);
    CHECK(str(p, leak.label(0).key()) == "pid");
    CHECK(leak.label(0).num() == 10);
    CHECK(str(p, leak.label(1).key()) == "comm");
    CHECK(str(p, leak.label(1).str()) == "app");
    CHECK(str(p, freed.label(1).str()) == "worker");

    // Leaf first; the leaf's lines: the inlined helper, then leak at its call site.
    REQUIRE(leak.location_id_size() == 2);
    const pb::Location& site = p.location(static_cast<int>(leak.location_id(0) - 1));
    CHECK(site.address() == 0x401234);
    REQUIRE(site.line_size() == 2);
    CHECK(str(p, fn(p, site.line(0).function_id()).name()) == "helper");
    CHECK(str(p, fn(p, site.line(0).function_id()).filename()) == "helper.h");
    CHECK(site.line(0).line() == 5);
    CHECK(str(p, fn(p, site.line(1).function_id()).name()) == "leak");
    CHECK(str(p, fn(p, site.line(1).function_id()).filename()) == "app.c");
    CHECK(site.line(1).line() == 20);
    // main's frame is one location, shared by both processes' stacks.
    CHECK(leak.location_id(1) == freed.location_id(1));

    REQUIRE(p.mapping_size() == 1);
    const pb::Mapping& m = p.mapping(0);
    CHECK(site.mapping_id() == m.id());
    CHECK(m.memory_start() == 0x400000);
    CHECK(m.memory_limit() == 0x500000);
    CHECK(m.file_offset() == 0x1000);
    CHECK(str(p, m.filename()) == "/usr/bin/app");
    CHECK(str(p, m.build_id()) == "abcdef01");
    CHECK(m.has_functions());
    CHECK(m.has_line_numbers());
    CHECK(m.has_inline_frames());

    // The stack the kernel could not store still carries its bytes.
    const pb::Sample& lost = p.sample(2);
    REQUIRE(lost.location_id_size() == 1);
    const pb::Location& l = p.location(static_cast<int>(lost.location_id(0) - 1));
    CHECK(l.mapping_id() == 0);
    CHECK(str(p, fn(p, l.line(0).function_id()).name()) == "[stack not stored]");
    CHECK(lost.value(3) == 50);
}

TEST_CASE("gunzip says a truncated gzip stream is truncated", "[export]") {
    std::string z = gzip(std::string(10000, 'x'));
    CHECK(gunzip(z) == std::string(10000, 'x'));
    CHECK_THROWS_WITH(gunzip(z.substr(0, z.size() / 2)), Catch::Contains("truncated"));
}

TEST_CASE("folded: process root, frames outermost first with inlined ones, outstanding bytes", "[export]") {
    Report r = sample_report();
    Frame anon;
    anon.address = 0x7f0000001000;
    Frame unnamed = frame(0x401500, "x", "", 0);
    unnamed.function.reset();
    ReportStack s;
    s.stats = {10, 1, 9, 8, 1, 8, 1};
    s.frames = {anon, unnamed};
    r.all_stacks.push_back(s);
    // The freed stack (no outstanding bytes) has no line.
    CHECK(render_folded(r, r.all_stacks) ==
          "app (10);main;leak;helper 3000\n"
          "worker (20);[stack not stored] 50\n"
          "app (10);app+0x2500;0x7f0000001000 8\n");
}

namespace {

// A Python frame (python/python_frames.h): the code object's address, the
// function's qualified name, its file and the line it was at.
Frame python_frame(uint64_t code, const char* fn, int line) {
    Frame f;
    f.kind = FrameKind::Python;
    f.address = code;
    f.function = fn;
    f.file = "/srv/app.py";
    f.line = line;
    return f;
}

// Python's object domain of pid 10: two lines of one function (one code
// object), one of whose objects were all freed.
std::vector<ReportStack> python_stacks() {
    ReportStack kept, freed;
    kept.stats = {10, 1, 101, 3200, 100, 6400, 200};
    kept.frames = {python_frame(0x7f00aa, "build", 12), python_frame(0x7f00bb, "<module>", 30)};
    freed.stats = {10, 1, 102, 0, 0, 320, 10};
    freed.frames = {python_frame(0x7f00aa, "build", 14), python_frame(0x7f00bb, "<module>", 30)};
    return {kept, freed};
}

}  // namespace

TEST_CASE("pprof: the Python domain's own sample types, apart from the heap's; a code object's lines apart",
          "[export][python]") {
    Report r = sample_report();
    pb::Profile p;
    REQUIRE(p.ParseFromString(encode_pprof(r, r.all_stacks, python_stacks())));
    REQUIRE(p.sample_type_size() == 8);
    const char* types[] = {"alloc_objects",        "alloc_space",        "inuse_objects",        "inuse_space",
                           "python_alloc_objects", "python_alloc_space", "python_inuse_objects", "python_inuse_space"};
    for (int i = 0; i < 8; i++) CHECK(str(p, p.sample_type(i).type()) == types[i]);
    CHECK(str(p, p.default_sample_type()) == "inuse_space");
    REQUIRE(p.sample_size() == 5);
    // The heap's samples have no Python values, the Python ones no heap values.
    auto values = [&](int i) { return std::vector<int64_t>(p.sample(i).value().begin(), p.sample(i).value().end()); };
    CHECK(values(0) == std::vector<int64_t>{3, 3000, 3, 3000, 0, 0, 0, 0});
    CHECK(values(3) == std::vector<int64_t>{0, 0, 0, 0, 200, 6400, 100, 3200});
    CHECK(values(4) == std::vector<int64_t>{0, 0, 0, 0, 10, 320, 0, 0});
    CHECK(str(p, p.sample(3).label(1).str()) == "app");
    // Lines 12 and 14 of one code object are two locations; <module>:30 one.
    const pb::Location& l12 = p.location(static_cast<int>(p.sample(3).location_id(0) - 1));
    const pb::Location& l14 = p.location(static_cast<int>(p.sample(4).location_id(0) - 1));
    CHECK(l12.line(0).line() == 12);
    CHECK(l14.line(0).line() == 14);
    CHECK(str(p, fn(p, l12.line(0).function_id()).name()) == "build");
    CHECK(str(p, fn(p, l12.line(0).function_id()).filename()) == "/srv/app.py");
    CHECK(p.sample(3).location_id(1) == p.sample(4).location_id(1));
    bool said = false;
    for (int64_t c : p.comment()) said |= str(p, c).find("python_*: Python's object allocator") != std::string::npos;
    CHECK(said);
    // Sampled in-process: the Python values are said to be estimates.
    r.python_sampled = true, r.sample_bytes = 65536;
    REQUIRE(p.ParseFromString(encode_pprof(r, r.all_stacks, python_stacks())));
    said = false;
    for (int64_t c : p.comment()) said |= str(p, c).find("python_* are estimates") != std::string::npos;
    CHECK(said);
    // Without Python stacks the profile is Go's heap profile, as before.
    REQUIRE(p.ParseFromString(encode_pprof(r, r.all_stacks)));
    CHECK(p.sample_type_size() == 4);
}

TEST_CASE("folded: the Python domain's stacks under a frame of their own", "[export][python]") {
    Report r = sample_report();
    CHECK(render_folded(r, r.all_stacks, python_stacks()) ==
          "app (10);main;leak;helper 3000\n"
          "worker (20);[stack not stored] 50\n"
          "app (10);[python objects];<module>;build 3200\n");
}

TEST_CASE("pprof: a name that is not UTF-8 is made valid, so protobuf serializes it", "[export]") {
    Report r = sample_report();
    r.all_stacks[0].frames[0].function = std::string("bad\xff name\xe2\x82");
    pb::Profile p;
    REQUIRE(p.ParseFromString(encode_pprof(r, r.all_stacks)));
    bool found = false;
    for (const auto& s : p.string_table())
        found |= s == "bad\xef\xbf\xbd name\xef\xbf\xbd\xef\xbf\xbd";  // one per stray byte
    CHECK(found);
}
