// /debug/pprof/heap?seconds=N's delta (user/serve/delta.h): two reports in,
// the change per stack out, and the encoded profile's duration read back
// with libprotobuf. `go tool pprof` reads the served delta in the runtime
// tests ([serve]).
#include <catch2/catch.hpp>

#include "profile.pb.h"
#include "serve/delta.h"
#include "views/export/pprof.h"

using namespace memtop;
namespace pb = perftools::profiles;

namespace {

ReportStack stack(uint32_t pid, uint64_t id, std::vector<uint64_t> ips, int64_t bytes, int64_t allocs,
                  uint64_t alloc_bytes, uint64_t alloc_count) {
    ReportStack s;
    s.stats = {pid, 1, id, bytes, allocs, alloc_bytes, alloc_count};
    s.ips = std::move(ips);
    for (uint64_t ip : s.ips) {
        Frame f;
        f.address = ip;
        f.function = "f" + std::to_string(ip);
        s.frames.push_back(f);
    }
    return s;
}

const StackStats* find(const Report& d, uint32_t pid, uint64_t id) {
    for (const auto& s : d.all_stacks)
        if (s.stats.pid == pid && s.stats.stack_id == id) return &s.stats;
    return nullptr;
}

}  // namespace

TEST_CASE("heap_delta: allocated during the window, and the change in use, per stack") {
    Report start, end;
    start.time = std::chrono::system_clock::time_point(std::chrono::seconds(1000));
    end.time = start.time + std::chrono::seconds(5);
    ProcessStats p;
    p.pid = 10, p.epoch = 1, p.comm = "app";
    ProcessStats gone = p;
    gone.pid = 20, gone.comm = "ended";
    start.processes = {p, gone};
    end.processes = {p};
    start.lost[Lost::alloc_map_full] = 2;
    end.lost[Lost::alloc_map_full] = 5;
    start.all_stacks = {
        stack(10, 1, {0x10, 0x20}, 1000, 1, 1000, 1),  // kept throughout: no change
        stack(10, 2, {0x11, 0x20}, 500, 5, 800, 8),    // some freed, more allocated
        stack(10, 3, {0x12, 0x20}, 300, 3, 300, 3),    // freed during the window
        stack(20, 1, {0x10, 0x20}, 700, 7, 700, 7),    // same stack, another process, which ends
    };
    end.all_stacks = {
        stack(10, 1, {0x10, 0x20}, 1000, 1, 1000, 1), stack(10, 2, {0x11, 0x20}, 200, 2, 1100, 11),
        stack(10, 3, {0x12, 0x20}, 0, 0, 300, 3),
        stack(10, 4, {0x13, 0x20}, 4096, 2, 8192, 4),  // new during the window
    };

    Report d = heap_delta(start, end, std::nullopt);
    CHECK(d.time == start.time);
    CHECK(d.lost[Lost::alloc_map_full] == 3);
    CHECK(find(d, 10, 1) == nullptr);  // all four values zero: left out
    const StackStats* churn = find(d, 10, 2);
    REQUIRE(churn);
    CHECK(churn->alloc_bytes_total == 300);
    CHECK(churn->allocs_total == 3);
    CHECK(churn->bytes == -300);
    CHECK(churn->allocs == -3);
    const StackStats* freed = find(d, 10, 3);
    REQUIRE(freed);
    CHECK(freed->alloc_bytes_total == 0);
    CHECK(freed->bytes == -300);
    CHECK(freed->allocs == -3);
    const StackStats* added = find(d, 10, 4);
    REQUIRE(added);
    CHECK(added->alloc_bytes_total == 8192);
    CHECK(added->allocs_total == 4);
    CHECK(added->bytes == 4096);
    CHECK(added->allocs == 2);
    const StackStats* ended = find(d, 20, 1);
    REQUIRE(ended);
    CHECK(ended->bytes == -700);
    CHECK(ended->allocs == -7);
    CHECK(ended->alloc_bytes_total == 0);
    CHECK(d.all_stacks.size() == 4);
    CHECK(d.processes.size() == 2);  // the ended process keeps its comm label

    SECTION("?pid= keeps one process's stacks") {
        Report one = heap_delta(start, end, 20);
        REQUIRE(one.all_stacks.size() == 1);
        CHECK(one.all_stacks[0].stats.pid == 20);
    }
    SECTION("a stack id with other addresses is another stack") {
        end.all_stacks[0].ips = {0x10, 0x21};
        Report moved = heap_delta(start, end, 10);
        int with_id1 = 0;
        for (const auto& s : moved.all_stacks) with_id1 += s.stats.stack_id == 1;
        CHECK(with_id1 == 2);
    }
    SECTION("the encoded profile carries the window's duration") {
        pb::Profile prof;
        int64_t nanos = 5'123'456'789;
        REQUIRE(prof.ParseFromString(with_duration(encode_pprof(d, d.all_stacks), nanos)));
        CHECK(prof.duration_nanos() == nanos);
        CHECK(prof.time_nanos() == 1000'000'000'000LL);
        CHECK(prof.sample_size() == 4);
    }
}
