// --lines: per-line sums of one source file over symbolized stacks.
#include <catch2/catch.hpp>

#include "symbolize/lines.h"

using namespace memtop;

namespace {
Frame frame(const char* fn, const char* file, int line) {
    Frame f;
    f.function = fn;
    f.file = file;
    f.line = line;
    return f;
}
StackStats stats(int64_t bytes, int64_t allocs, uint64_t total_bytes, uint64_t total) {
    StackStats s;
    s.bytes = bytes;
    s.allocs = allocs;
    s.alloc_bytes_total = total_bytes;
    s.allocs_total = total;
    return s;
}
}  // namespace

TEST_CASE("source_matches: whole path or a trailing part at a slash", "[lines]") {
    CHECK(source_matches("/build/proj/src/a.c", "a.c"));
    CHECK(source_matches("/build/proj/src/a.c", "src/a.c"));
    CHECK(source_matches("/build/proj/src/a.c", "/build/proj/src/a.c"));
    CHECK_FALSE(source_matches("/build/proj/src/ba.c", "a.c"));
    CHECK_FALSE(source_matches("/build/proj/src/a.cc", "a.c"));
    CHECK_FALSE(source_matches("a.c", "src/a.c"));
    CHECK_FALSE(source_matches("/x/a.c", ""));
}

TEST_CASE("add_stack_lines: each line a stack passes gets its numbers once, sorted by line", "[lines]") {
    LineReport lr;
    lr.file = "app.c";
    // main(20) -> f(10) -> malloc, twice through the same lines, and a
    // recursive stack that passes line 10 twice.
    add_stack_lines(lr, stats(100, 1, 300, 3), {frame("f", "/src/app.c", 10), frame("main", "/src/app.c", 20)});
    add_stack_lines(lr, stats(7, 1, 7, 1),
                    {frame("f", "/src/app.c", 10), frame("f", "/src/app.c", 10), frame("main", "/src/app.c", 21),
                     frame("other", "/src/other.c", 5)});
    REQUIRE(lr.matched == "/src/app.c");
    REQUIRE(lr.lines.size() == 3);
    CHECK(lr.lines[0].line == 10);
    CHECK(lr.lines[0].bytes == 107);
    CHECK(lr.lines[0].allocs == 2);
    CHECK(lr.lines[0].alloc_bytes_total == 307);
    CHECK(lr.lines[0].allocs_total == 4);
    CHECK(lr.lines[0].function == "f");
    CHECK(lr.lines[1].line == 20);
    CHECK(lr.lines[1].bytes == 100);
    CHECK(lr.lines[2].line == 21);
    CHECK(lr.lines[2].bytes == 7);
}

TEST_CASE("add_stack_lines: inlined calls count at their own lines", "[lines]") {
    LineReport lr;
    lr.file = "app.cpp";
    Frame f = frame("outer", "/src/app.cpp", 40);  // the call site of the inlined helper, in outer
    f.inlined = {{std::string("helper()"), std::string("/src/app.cpp"), 12}};
    add_stack_lines(lr, stats(64, 1, 64, 1), {f});
    REQUIRE(lr.lines.size() == 2);
    CHECK(lr.lines[0].line == 12);
    CHECK(lr.lines[0].function == "helper()");
    CHECK(lr.lines[0].bytes == 64);
    CHECK(lr.lines[1].line == 40);
    CHECK(lr.lines[1].function == "outer");
}

TEST_CASE("add_stack_lines: a file no stack passes matches nothing", "[lines]") {
    LineReport lr;
    lr.file = "absent.c";
    add_stack_lines(lr, stats(1, 1, 1, 1), {frame("f", "/src/app.c", 10)});
    CHECK(lr.matched.empty());
    CHECK(lr.lines.empty());
}
