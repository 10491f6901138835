// glibc's real footprint per stack (model/footprint.h): sample_sites
// (tests/progs/sample_sites.c) keeps blocks of three sizes whose chunks are
// known from glibc's rules, and the final report (which reads the live
// blocks) must give each site's used bytes exactly:
//   1 KiB:  1024 + 8-byte header, rounded to 16        -> 1040 each
//   64 KiB: 65536 + 8, rounded to 16                   -> 65552 each
//   1 MiB:  mmapped: chunk 1048592 + 8, rounded to 4 KiB -> 1052672 each
// and bytes_per_alloc the requested size.
#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

TEST_CASE("sample_sites_fp exact: glibc's used bytes and bytes per block per stack", "[bpf][footprint][cmd]") {
    RT_REQUIRE_ENV();
    if (!have_prog("sample_sites_fp")) return;
    Run r = run_memtop_cmd({prog_path("sample_sites_fp")}, {});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, "sample_sites_fp");
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    struct Site {
        const char* function;
        long long n, size, used;
    };
    const Site sites[] = {
        {"sample_small", SAMPLE_SMALL_N / 2, SAMPLE_SMALL_SIZE, 1040},
        {"sample_mid", SAMPLE_MID_N, SAMPLE_MID_SIZE, 65552},
        {"sample_big", SAMPLE_BIG_N, SAMPLE_BIG_SIZE, 1052672},
    };
    for (const auto& site : sites) {
        INFO("site " << site.function);
        auto stacks = stacks_frame0(rep, p.pid, site.function);
        REQUIRE(stacks.size() == 1);
        const json& s = *stacks[0];
        CHECK(s.at("allocs").get<long long>() == site.n);
        CHECK(s.at("bytes_per_alloc").get<double>() == static_cast<double>(site.size));
        REQUIRE(s.at("used_bytes").is_number());
        CHECK(s.at("used_bytes").get<long long>() == site.n * site.used);
    }
}
