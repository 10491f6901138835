// glibc's footprint rules (model/footprint.h) and the per-block figures
// reports show beside a heap stack (aggregation, text, JSON).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "aggregate/aggregator.h"
#include "model/footprint.h"
#include "model/sampling.h"
#include "views/json.h"
#include "views/text.h"

using namespace memtop;

TEST_CASE("glibc chunk sizes follow request2size on x86-64", "[footprint]") {
    // MINSIZE 32 up to 24 requested bytes (8-byte header, the next chunk's
    // prev_size word lent to the block).
    CHECK(glibc_chunk_bytes(0) == 32);
    CHECK(glibc_chunk_bytes(1) == 32);
    CHECK(glibc_chunk_bytes(24) == 32);
    CHECK(glibc_chunk_bytes(25) == 48);
    CHECK(glibc_chunk_bytes(40) == 48);
    CHECK(glibc_chunk_bytes(41) == 64);
    CHECK(glibc_chunk_bytes(100) == 112);
    CHECK(glibc_chunk_bytes(1000) == 1008);
    CHECK(glibc_chunk_bytes(1024) == 1040);
    // Below the mmap threshold the chunk is all; from it, page-rounded.
    CHECK(glibc_used_bytes(128 * 1024 - 1) == 128 * 1024 + 16);
    CHECK(glibc_used_bytes(128 * 1024) == 132 * 1024);
    CHECK(glibc_used_bytes(1 << 20) == (1 << 20) + 4096);
    CHECK(glibc_used_bytes(~uint64_t{0} - 3) == ~uint64_t{0} - 3);  // no wrap
}

TEST_CASE("per-stack glibc footprint sums each block's chunk, young blocks left out", "[footprint]") {
    std::vector<BlockAge> blocks = {
        {1, 1, 7, 24, 5.0},    // 32
        {1, 1, 7, 25, 5.0},    // 48
        {1, 1, 7, 100, 0.5},   // 112, young
        {1, 1, 9, 1000, 9.0},  // 1008
        {2, 1, 7, 1, 9.0},     // 32, another process
    };
    auto used = glibc_used_bytes(blocks);
    CHECK(used.at({1, 1, 7}) == 32 + 48 + 112);
    CHECK(used.at({1, 1, 9}) == 1008);
    CHECK(used.at({2, 1, 7}) == 32);
    auto old = glibc_used_bytes(blocks, 0, 1.0);
    CHECK(old.at({1, 1, 7}) == 32 + 48);
}

TEST_CASE("sampled blocks' footprint is weighted by the blocks each stands for", "[footprint]") {
    constexpr uint64_t T = 65536;
    std::vector<BlockAge> blocks = {{1, 1, 7, 24, 1.0}, {1, 1, 7, 24, 1.0}};
    auto used = glibc_used_bytes(blocks, T);
    double each = block_weight(24, T).second;
    CHECK(used.at({1, 1, 7}) == std::llround(2 * each * 32));
}

namespace {

Report report_with(int64_t bytes, int64_t allocs, std::optional<int64_t> used) {
    Report r;
    ReportStack s;
    s.stats.pid = 42;
    s.stats.epoch = 1;
    s.stats.stack_id = 5;
    s.stats.bytes = bytes;
    s.stats.allocs = allocs;
    s.stats.alloc_bytes_total = static_cast<uint64_t>(bytes);
    s.stats.allocs_total = static_cast<uint64_t>(allocs);
    s.complete = true;
    s.used_bytes = used;
    r.stacks.push_back(s);
    return r;
}

}  // namespace

TEST_CASE("text shows bytes per block, glibc's use and a note for many small blocks", "[footprint]") {
    // 100,000 blocks of 24 bytes: 32 used each, a quarter of it overhead.
    std::string t = render_text(report_with(2400000, 100000, 3200000));
    CHECK(t.find("per block: 24 B requested, 32 B used under glibc (3.1 MiB in all, 25% chunk header and rounding)") !=
          std::string::npos);
    CHECK(t.find("note: many small blocks") != std::string::npos);
    // Few blocks, or a small share: no note.
    t = render_text(report_with(1000, 10, 1120));
    CHECK(t.find("per block: 100 B requested, 112 B used under glibc") != std::string::npos);
    CHECK(t.find("note: many small blocks") == std::string::npos);
    // Exact bytes below 1 MiB, a share under 10% with a decimal.
    t = render_text(report_with(1024 * 100, 100, 1040 * 100));
    CHECK(t.find("per block: 1024 B requested, 1040 B used under glibc (101.6 KiB in all, 1.5% chunk header") !=
          std::string::npos);
    // Footprint unknown (not glibc, or live blocks not read): requested only.
    t = render_text(report_with(113, 2, std::nullopt));
    CHECK(t.find("per block: 56.5 B requested\n") != std::string::npos);
}

TEST_CASE("JSON heap stacks carry bytes_per_alloc and used_bytes", "[footprint]") {
    auto j = nlohmann::json::parse(render_json(report_with(2400000, 100000, 3200000)));
    const auto& s = j.at("stacks").at(0);
    CHECK(s.at("bytes_per_alloc").get<double>() == 24.0);
    CHECK(s.at("used_bytes").get<int64_t>() == 3200000);
    j = nlohmann::json::parse(render_json(report_with(0, 0, std::nullopt)));
    CHECK(j.at("stacks").at(0).at("bytes_per_alloc").is_null());
    CHECK(j.at("stacks").at(0).at("used_bytes").is_null());
}
