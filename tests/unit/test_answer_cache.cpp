// serve/answer_cache.h: one answer per report and key, whoever asks.
#include <atomic>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "serve/answer_cache.h"

using memtop::AnswerCache;
using memtop::Report;

TEST_CASE("concurrent requests for one answer make it once and share it", "[serve][answer_cache]") {
    AnswerCache cache(8);
    auto r = std::make_shared<const Report>();
    std::atomic<int> made{0};
    std::vector<AnswerCache::Body> got(16);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < got.size(); i++)
        threads.emplace_back([&, i] {
            got[i] = cache.get(r, "json", [&] {
                made++;
                return std::string(1 << 20, 'x');
            });
        });
    for (auto& t : threads) t.join();
    CHECK(made == 1);
    for (const auto& b : got) {
        REQUIRE(b);
        CHECK(b.get() == got[0].get());  // the same bytes, not copies
        CHECK(b->size() == size_t(1) << 20);
    }
    CHECK(cache.size() == 1);
}

TEST_CASE("a new report makes its answers again; other keys are their own", "[serve][answer_cache]") {
    AnswerCache cache(8);
    auto r1 = std::make_shared<const Report>();
    auto r2 = std::make_shared<const Report>();
    int made = 0;
    auto make = [&] { return std::to_string(++made); };
    CHECK(*cache.get(r1, "json", make) == "1");
    CHECK(*cache.get(r1, "json", make) == "1");
    CHECK(*cache.get(r1, "prometheus", make) == "2");
    CHECK(cache.size() == 2);
    CHECK(*cache.get(r2, "json", make) == "3");
    CHECK(cache.size() == 1);  // r1's answers went
    CHECK(*cache.get(r2, "prometheus", make) == "4");
}

TEST_CASE("past the bound, answers are made per request and not kept", "[serve][answer_cache]") {
    AnswerCache cache(2);
    auto r = std::make_shared<const Report>();
    int made = 0;
    auto make = [&] { return std::to_string(++made); };
    cache.get(r, "pprof?pid=1", make);
    cache.get(r, "pprof?pid=2", make);
    CHECK(*cache.get(r, "pprof?pid=3", make) == "3");
    CHECK(*cache.get(r, "pprof?pid=3", make) == "4");
    CHECK(cache.size() == 2);
    CHECK(*cache.get(r, "pprof?pid=1", make) == "1");  // kept ones still served
}

TEST_CASE("a failure to make an answer reaches its request, and is tried again with the next report",
          "[serve][answer_cache]") {
    AnswerCache cache(4);
    auto r1 = std::make_shared<const Report>();
    auto fail = []() -> std::string { throw std::runtime_error("out of memory"); };
    CHECK_THROWS_WITH(cache.get(r1, "json", fail), "out of memory");
    CHECK_THROWS_WITH(cache.get(r1, "json", [] { return std::string("late"); }), "out of memory");
    auto r2 = std::make_shared<const Report>();
    CHECK(*cache.get(r2, "json", [] { return std::string("ok"); }) == "ok");
}
