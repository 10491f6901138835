#include <catch2/catch.hpp>

#include "procinfo/meminfo.h"

using memtop::parse_meminfo;

TEST_CASE("meminfo: total, available and swap, in bytes", "[meminfo]") {
    auto m = parse_meminfo(
        "MemTotal:       24683620 kB\n"
        "MemFree:        22996552 kB\n"
        "MemAvailable:   23947608 kB\n"
        "Buffers:            3316 kB\n"
        "SwapTotal:       2097148 kB\n"
        "SwapFree:        2096124 kB\n"
        "HugePages_Total:       0\n"  // no unit: not a field memtop reads
        "Hugepagesize:       2048 kB\n");
    REQUIRE(m);
    CHECK(m->total == 24683620LL * 1024);
    CHECK(m->free == 22996552LL * 1024);
    CHECK(m->available == 23947608LL * 1024);
    CHECK(m->used() == (24683620LL - 23947608LL) * 1024);
    CHECK(m->swap_total == 2097148LL * 1024);
    CHECK(m->swap_used() == 1024LL * 1024);
}

TEST_CASE("meminfo: before MemAvailable (Linux 3.14), free counts as available", "[meminfo]") {
    auto m = parse_meminfo("MemTotal: 1000 kB\nMemFree: 400 kB\n");
    REQUIRE(m);
    CHECK(m->available == 400 * 1024);
    CHECK(m->swap_total == 0);
}

TEST_CASE("meminfo: malformed input is refused", "[meminfo]") {
    CHECK_FALSE(parse_meminfo(""));
    CHECK_FALSE(parse_meminfo("MemFree: 400 kB\n"));    // no MemTotal
    CHECK_FALSE(parse_meminfo("MemTotal: lots kB\n"));  // not a number
    CHECK_FALSE(parse_meminfo("MemTotal: 1000\n"));     // no unit
    CHECK_FALSE(parse_meminfo("MemTotal: 1000 kB\nSwapFree: -1 kB\n"));
}

TEST_CASE("meminfo: this host's file parses", "[meminfo][live]") {
    std::string err;
    auto m = memtop::read_meminfo(&err);
    INFO(err);
    REQUIRE(m);
    CHECK(m->total > 0);
    CHECK(m->available <= m->total);
}
