// Which heap stacks a report shows, per --sort order: pure, no root.
#include <catch2/catch.hpp>

#include "aggregate/aggregator.h"
#include "aggregate/select.h"

using namespace memtop;

namespace {
StackStats stack(uint64_t id, int64_t bytes, uint64_t alloc_bytes, uint64_t allocs_total, uint64_t temp) {
    StackStats s;
    s.pid = 7;
    s.stack_id = id;
    s.bytes = bytes;
    s.allocs = bytes > 0 ? 1 : 0;
    s.alloc_bytes_total = alloc_bytes;
    s.allocs_total = allocs_total;
    s.temp_allocs = temp;
    s.temp_bytes = temp * 8;
    return s;
}

std::vector<uint64_t> ids(const std::vector<StackStats>& v) {
    std::vector<uint64_t> out;
    for (const auto& s : v) out.push_back(s.stack_id);
    return out;
}

// 1: a leak; 2: all freed, the most bytes allocated; 3: all freed, the most
// allocations and all of them temporary; 4: nothing at all.
const std::vector<StackStats> kStacks = {stack(1, 500, 500, 1, 0), stack(2, 0, 9000, 3, 1), stack(3, 0, 800, 100, 100),
                                         stack(4, 0, 0, 0, 0)};
}  // namespace

TEST_CASE("outstanding: only stacks still holding memory", "[select]") {
    CHECK(ids(top_stacks(kStacks, 10, std::nullopt, StackOrder::Outstanding)) == std::vector<uint64_t>{1});
}

TEST_CASE("allocated, allocations, temporary: freed stacks are listed, by their own figure", "[select]") {
    CHECK(ids(top_stacks(kStacks, 10, std::nullopt, StackOrder::Allocated)) == std::vector<uint64_t>{2, 3, 1});
    CHECK(ids(top_stacks(kStacks, 10, std::nullopt, StackOrder::Allocations)) == std::vector<uint64_t>{3, 2, 1});
    CHECK(ids(top_stacks(kStacks, 10, std::nullopt, StackOrder::Temporary)) == std::vector<uint64_t>{3, 2});
    CHECK(ids(top_stacks(kStacks, 1, std::nullopt, StackOrder::Allocated)) == std::vector<uint64_t>{2});
}

TEST_CASE("stack orders have names a command line and a recording use", "[select]") {
    for (StackOrder o :
         {StackOrder::Outstanding, StackOrder::Allocated, StackOrder::Allocations, StackOrder::Temporary}) {
        CHECK(parse_stack_order(stack_order_name(o)) == o);
        CHECK(stack_order_info(o).order == o);
    }
    CHECK_FALSE(parse_stack_order("leaks"));
    CHECK(std::string(stack_order_info(StackOrder::Temporary).ranks_by) ==
          "temporary allocations (freed before the thread's next allocation)");
}

TEST_CASE("age histograms put each block in the bucket of its age", "[select][age]") {
    std::vector<BlockAge> blocks = {{7, 1, 5, 100, 0.5},  {7, 1, 5, 200, 1.0},    {7, 1, 5, 300, 59.9},
                                    {7, 1, 5, 400, 7200}, {7, 1, 6, 50, 3599.99}, {8, 1, 5, 10, 0}};
    auto h = age_histograms(blocks);
    REQUIRE(h.size() == 3);
    const auto& a = h[{7, 1, 5}];
    REQUIRE(a.size() == std::size(kAgeBounds));
    CHECK(a[0].bytes == 100);  // < 1 s
    CHECK(a[1].bytes == 200);  // 1 s is not under 1 s
    CHECK(a[2].bytes == 300);  // < 60 s
    CHECK(a[5].bytes == 400);  // over an hour: the last bucket
    CHECK(a[5].max_seconds < 0);
    CHECK(h[{7, 1, 6}][4].allocs == 1);
    CHECK(h[{8, 1, 5}][0].bytes == 10);
}
