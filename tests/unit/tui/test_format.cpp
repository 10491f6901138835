#include <catch2/catch.hpp>

#include "views/tui/format.h"

using namespace memtop;
using namespace memtop::tui;

TEST_CASE("header: host memory, memtop itself, what was lost", "[tui][format]") {
    MemInfo m;
    m.total = 8LL << 30;
    m.available = 6LL << 30;
    m.swap_total = 2LL << 30;
    m.swap_free = 1LL << 30;
    CHECK(host_memory_text(m) == "Mem 8.0 GiB total, 2.0 GiB used, 6.0 GiB available   Swap 1.0 GiB of 2.0 GiB used");
    CHECK(host_memory_text(std::nullopt).find("unreadable") != std::string::npos);
    SelfStats s;
    s.cpu_percent = 1.25;
    s.rss_bytes = 3 << 20;
    s.probes = 17;
    CHECK(self_text(s) == "memtop 1.2% CPU, 3.0 MiB resident, 17 probes");
    LostCounters l;
    CHECK(lost_text(l) == "lost: nothing");
    l[Lost::events_lost] = 3;
    l[Lost::alloc_map_full] = 12;
    CHECK(lost_text(l) == "lost: 12 allocs (map full), 3 events");
    l[Lost::mapping_map_full] = 1;  // every counter shows, in the list's order
    CHECK(lost_text(l) == "lost: 12 allocs (map full), 3 events, 1 mappings (map full)");
}

TEST_CASE("interval: + and - step through a ladder, clamped at its ends", "[tui][format]") {
    CHECK(next_interval(5, 1) == 10);
    CHECK(next_interval(5, -1) == 3);
    CHECK(next_interval(4, 1) == 5);  // -d 4: onto the ladder
    CHECK(next_interval(4, -1) == 3);
    CHECK(next_interval(0.5, -1) == 0.5);
    CHECK(next_interval(0.2, -1) == 0.2);  // below the ladder: left alone
    CHECK(next_interval(60, 1) == 60);
    CHECK(next_interval(120, 1) == 120);
    CHECK(interval_text(0.5) == "0.5s");
    CHECK(interval_text(5) == "5s");
    CHECK(interval_text(60) == "1m");
    CHECK(interval_text(90) == "1m30s");
}

TEST_CASE("frames: function+offset, file:line and module, or the address", "[tui][format]") {
    Frame f;
    f.address = 0x401136;
    CHECK(frame_text(f) == "0x401136  (?)");
    f.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    CHECK(frame_text(f) == "0x401136  (libc.so.6)");
    f.function = "leak_malloc";
    f.offset = 0x1a;
    f.file = "/src/tests/progs/c_sites.c";
    f.line = 37;
    CHECK(frame_text(f) == "leak_malloc+0x1a  c_sites.c:37  (libc.so.6)");
    InlinedFrame in;
    in.function = "helper";
    in.file = "/src/util.h";
    in.line = 3;
    CHECK(inlined_text(in) == "(inlined) helper  util.h:3");
}

TEST_CASE("bar chart: scaled to the largest value, newest on the right", "[tui][format]") {
    std::vector<std::optional<int64_t>> v = {4, 2, std::nullopt, 1, 0};
    auto c = bar_chart(v, 6, 2);
    REQUIRE(c.size() == 2);
    //            4    2    ?    1    0
    CHECK(c[0] == " #    ");
    CHECK(c[1] == " ## . ");
    // Only the newest values fit.
    auto narrow = bar_chart({8, 8, 8, 4}, 2, 1);
    CHECK(narrow[0] == "#.");
    // Anything above zero shows.
    CHECK(bar_chart({1000, 1}, 2, 1)[0] == "#.");
    CHECK(bar_chart({0, 0}, 3, 1)[0] == "   ");
    CHECK(bar_chart({1}, 0, 3).empty());
}
