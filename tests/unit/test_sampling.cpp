// --sample: the weighting of sampled blocks (user/model/sampling.h) and the
// exponential draw the BPF side uses (bpf/sample_math.h, the same code).
#include <linux/types.h>

#include <algorithm>
#include <cmath>
#include <random>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "aggregate/aggregator.h"
#include "app/sampler_preload.h"
#include "model/sampling.h"
#include "profile.pb.h"
#include "record/report_codec.h"
#include "sample_math.h"
#include "views/export/pprof.h"
#include "views/json.h"
#include "views/text.h"

using namespace memtop;

namespace {

constexpr uint64_t kT = 65536;

SampledAgg agg(uint64_t stack, uint64_t size, int64_t kept, uint64_t total) {
    SampledAgg a;
    a.stats = {1, 1, stack, kept * static_cast<int64_t>(size), kept, total * size, total};
    a.size = size;
    return a;
}

}  // namespace

TEST_CASE("sampling: each size of a stack is weighted by its own probability", "[sampling]") {
    CHECK(sample_probability(kT, kT) == Approx(1 - std::exp(-1.0)));
    CHECK(sample_probability(0, kT) == 0.0);
    std::vector<SampledAgg> aggs = {agg(7, 1024, 2, 4), agg(7, 1 << 20, 1, 1), agg(9, 64, 0, 3)};
    auto stacks = weigh_stacks(aggs, kT);
    REQUIRE(stacks.size() == 2);
    const StackStats& s = stacks[0].stack_id == 7 ? stacks[0] : stacks[1];
    double p_small = sample_probability(1024, kT), p_big = sample_probability(1 << 20, kT);
    CHECK(s.bytes == std::llround(2048 / p_small) + std::llround((1 << 20) / p_big));
    CHECK(s.allocs == std::llround(2 / p_small) + std::llround(1 / p_big));
    CHECK(s.alloc_bytes_total == static_cast<uint64_t>(std::llround(4096 / p_small) + std::llround((1 << 20) / p_big)));
    CHECK(s.allocs_total == static_cast<uint64_t>(std::llround(4 / p_small) + std::llround(1 / p_big)));
    // Scaling the stack's sum by its mean size would be biased: the objects
    // of the small size stand for far more blocks than the mean says.
    double mean = (2048.0 + (1 << 20)) / 3;
    CHECK(std::fabs(s.allocs - 3 / sample_probability(static_cast<uint64_t>(mean), kT)) > 100);
    const StackStats& freed = stacks[0].stack_id == 9 ? stacks[0] : stacks[1];
    CHECK(freed.bytes == 0);
    CHECK(freed.allocs_total == static_cast<uint64_t>(std::llround(3 / sample_probability(64, kT))));
}

TEST_CASE("sampling: a process's estimate is the sum of its stacks'", "[sampling]") {
    std::vector<SampledAgg> aggs = {agg(7, 1024, 2, 4), agg(8, 1 << 20, 1, 1)};
    auto est = heap_estimates(aggs, kT);
    REQUIRE(est.count({1, 1}));
    const HeapEstimate& e = est.at({1, 1});
    int64_t sum = 0;
    for (const auto& s : weigh_stacks(aggs, kT)) sum += s.bytes;
    CHECK(e.bytes == sum);
    ProcessStats p;
    p.pid = p.epoch = 1;
    p.heap_bytes = 2048 + (1 << 20);       // the kernel's: sampled blocks' true sizes
    p.heap_peak_bytes = 4096 + (1 << 20);  // all of them at once
    p.allocs_total = 5;
    apply_estimate(p, &e);
    CHECK(p.heap_bytes == e.bytes);
    CHECK(p.allocs_total == e.allocs_total);
    CHECK(p.frees_total == e.allocs_total - static_cast<uint64_t>(e.allocs));
    CHECK(p.heap_peak_bytes == std::llround((4096 + (1 << 20)) * e.peak_scale));
    ProcessStats none;
    none.heap_bytes = 10;
    apply_estimate(none, nullptr);
    CHECK(none.heap_bytes == 0);
}

TEST_CASE("sampling: the BPF side's exponential draw is -ln(U) to within 1e-5", "[sampling]") {
    auto table = log2_fraction_table();
    CHECK(table[0] == 0);
    CHECK(table[256] == 1u << 24);
    double worst = 0;
    for (uint64_t v = 1; v < (1ull << 32); v += 104729) {  // a prime step: every mantissa region
        double want = -std::log(static_cast<double>(v | 1) / 4294967296.0);
        double got = static_cast<double>(exp_q24_of(static_cast<__u32>(v), table.data())) / 16777216.0;
        worst = std::max(worst, std::fabs(got - want));
    }
    INFO("worst error " << worst);
    CHECK(worst < 1e-5);
}

TEST_CASE("sampling: countdown and weights together are unbiased", "[sampling]") {
    // The BPF side's countdown (bpf/sample.h) run on a known sequence of
    // sizes with a fixed seed: the estimate of each size's bytes and blocks
    // is within 4 sigma of the truth.
    auto table = log2_fraction_table();
    std::mt19937 rng(12345);
    auto draw = [&] { return static_cast<int64_t>((kT * exp_q24_of(static_cast<__u32>(rng()), table.data())) >> 24); };
    const uint64_t sizes[] = {16, 1000, 40000, 300000};
    const int n_each = 20000;
    std::map<uint64_t, uint64_t> sampled;
    int64_t countdown = draw();
    for (int i = 0; i < n_each; i++)
        for (uint64_t s : sizes) {
            countdown -= static_cast<int64_t>(s);
            if (countdown > 0) continue;
            countdown = draw();
            sampled[s]++;
        }
    std::vector<SampledAgg> aggs;
    for (auto [size, n] : sampled) aggs.push_back(agg(static_cast<uint64_t>(size), size, static_cast<int64_t>(n), n));
    for (const auto& s : weigh_stacks(aggs, kT)) {
        uint64_t size = s.stack_id;
        double p = sample_probability(size, kT);
        double sigma_blocks = std::sqrt(n_each * (1 - p) / p);
        INFO("size " << size << ": " << s.allocs << " blocks estimated of " << n_each << ", sigma " << sigma_blocks);
        CHECK(std::fabs(static_cast<double>(s.allocs - n_each)) <= 4 * sigma_blocks + 1);
        CHECK(std::fabs(static_cast<double>(s.bytes) - static_cast<double>(n_each * size)) <=
              4 * sigma_blocks * size + size);
    }
    CHECK(sampled.size() == 4);
}

TEST_CASE("sampling: every view marks a sampled report as estimates, an exact one not", "[sampling]") {
    Report r;
    ProcessStats p;
    p.pid = 5;
    p.epoch = 1;
    p.comm = "app";
    r.processes = {p};
    ReportStack s;
    s.stats = {5, 1, 7, 1 << 20, 16, 1 << 21, 32};
    r.all_stacks = {s};
    for (uint64_t t : {uint64_t{0}, kT}) {
        INFO("sample_bytes " << t);
        r.sample_bytes = t;
        auto j = nlohmann::json::parse(render_json(r));
        CHECK(j.contains("sampling") == (t != 0));
        if (t) CHECK(j["sampling"]["bytes"] == t);
        CHECK((render_text(r).find("ESTIMATES") != std::string::npos) == (t != 0));
        perftools::profiles::Profile prof;
        REQUIRE(prof.ParseFromString(gunzip(gzip(encode_pprof(r, r.all_stacks)))));
        CHECK(prof.period() == static_cast<int64_t>(t ? t : 1));
        CHECK(prof.sample(0).value(3) == (1 << 20));  // values are the estimates as given, not scaled again
        CHECK(decode_report(nlohmann::json::parse(encode_report(r).dump())).sample_bytes == t);
    }
}

TEST_CASE("sampling: --min-age's age histogram weights each live block by its size", "[sampling]") {
    CHECK(block_weight(100, 0) == std::pair<double, double>{100.0, 1.0});
    CHECK(block_weight(0, kT) == std::pair<double, double>{0.0, 0.0});
    double p = sample_probability(1024, kT);
    std::vector<BlockAge> blocks = {{1, 1, 7, 1024, 0.5}, {1, 1, 7, 1024, 0.5}, {1, 1, 7, 1 << 20, 20}};
    auto h = age_histograms(blocks, kT).at({1, 1, 7});
    REQUIRE(h.size() == std::size(kAgeBounds));
    CHECK(h[0].bytes == static_cast<uint64_t>(std::llround(2048 / p)));
    CHECK(h[0].allocs == static_cast<uint64_t>(std::llround(2 / p)));
    CHECK(h[2].bytes == static_cast<uint64_t>(std::llround((1 << 20) / sample_probability(1 << 20, kT))));
    auto exact = age_histograms(blocks).at({1, 1, 7});
    CHECK(exact[0].bytes == 2048);
    CHECK(exact[0].allocs == 2);
}

// --python-objects --sample -- CMD: a process's Python objects sampled
// in-process get the heap's estimate, in their own py_* numbers.
TEST_CASE("sampling: a process's Python domain sampled in-process gets its estimate, marked", "[sampling]") {
    std::vector<SampledAgg> aggs = {agg(7, 32, 10, 40), agg(8, 600, 1, 2)};
    const HeapEstimate e = heap_estimates(aggs, kT).at({1, 1});
    ProcessStats p;
    p.pid = p.epoch = 1;
    p.heap_bytes = 5000;  // the heap is not touched
    p.py_bytes = 10 * 32 + 600;
    p.py_peak_bytes = 40 * 32 + 1200;
    apply_python_estimate(p, e);
    CHECK(p.py_sampled);
    CHECK(p.heap_bytes == 5000);
    CHECK(p.py_bytes == e.bytes);
    CHECK(p.py_allocs_total == e.allocs_total);
    CHECK(p.py_frees_total == e.allocs_total - static_cast<uint64_t>(e.allocs));
    CHECK(p.py_peak_bytes == std::max<int64_t>(e.bytes, std::llround((40 * 32 + 1200) * e.peak_scale)));
    Report r;
    r.processes.push_back(p);
    nlohmann::json j = nlohmann::json::parse(render_json(r));
    CHECK(j["processes"][0]["python"]["estimates"] == true);
}

// -p --python-objects: pymalloc's objects sampled at its sites (key size
// the object's), the blocks beneath counted exactly (key size 0): one
// estimate per stack and process, the counted ones with weight 1.
TEST_CASE("sampling: a Python domain's counted blocks join its sampled objects' estimate at weight 1", "[sampling]") {
    SampledAgg counted = agg(7, 1000, 3, 5);
    counted.size = 0;
    counted.exact = true;
    std::vector<SampledAgg> aggs = {agg(7, 32, 10, 40), counted};
    const double p = sample_probability(32, kT);
    auto stacks = weigh_stacks(aggs, kT);
    REQUIRE(stacks.size() == 1);
    CHECK(stacks[0].bytes == std::llround(320 / p) + 3000);
    CHECK(stacks[0].allocs == std::llround(10 / p) + 3);
    CHECK(stacks[0].allocs_total == static_cast<uint64_t>(std::llround(40 / p) + 5));
    const HeapEstimate e = heap_estimates(aggs, kT).at({1, 1});
    CHECK(e.sampled);
    CHECK(e.bytes == stacks[0].bytes);
    CHECK(e.alloc_bytes_total == stacks[0].alloc_bytes_total);
    // Counted blocks only: not an estimate, and the process keeps its numbers.
    const HeapEstimate c = heap_estimates({counted}, kT).at({1, 1});
    CHECK_FALSE(c.sampled);
    CHECK(c.bytes == 3000);
    ProcessStats proc;
    proc.py_bytes = 1234;
    apply_python_estimate(proc, c);
    CHECK_FALSE(proc.py_sampled);
    CHECK(proc.py_bytes == 1234);
}

// Where CPython would install its own allocators over the sampler's hooks,
// memtop probes pymalloc's sites instead (the sampler checks the same
// environment).
TEST_CASE("sampling: CPython's PYTHONMALLOC, PYTHONDEVMODE and -X dev refuse the in-process hooks", "[sampling]") {
    std::vector<std::string> argv = {"/usr/bin/python3.11", "script.py"};
    CHECK(python_hook_refused({"HOME=/root", "PYTHONMALLOC="}, argv).empty());
    CHECK(python_hook_refused({"PYTHONMALLOC=malloc"}, argv).find("PYTHONMALLOC=malloc") != std::string::npos);
    CHECK_FALSE(python_hook_refused({"PYTHONDEVMODE=1"}, argv).empty());
    CHECK_FALSE(python_hook_refused({}, {"python3", "-X", "dev", "s.py"}).empty());
    CHECK_FALSE(python_hook_refused({}, {"python3", "-Xdev", "s.py"}).empty());
    CHECK(python_hook_refused({}, {"python3", "-X", "utf8", "s.py"}).empty());
    auto env = preload_environment("/lib/libmemtop_sampler.so", 4096, true);
    CHECK(std::find(env.begin(), env.end(), "MEMTOP_SAMPLE_PYTHON=1") != env.end());
    env = preload_environment("/lib/libmemtop_sampler.so", 4096, false);
    CHECK(std::find(env.begin(), env.end(), "MEMTOP_SAMPLE_PYTHON=1") == env.end());
}
