// --sample BYTES: turning the kernel's sampled sums into unbiased estimates
// (bpf/sample.h samples; docs/hot-path.md, "Sampled heap tracing").
//
// The kernel keeps integers only: per (process, stack, block size) the true
// sizes and counts of the sampled blocks. A block of size s was sampled with
// probability p(s) = 1 - exp(-s/T), so each sampled block stands for 1/p(s)
// blocks and s/p(s) bytes: weighting every size by its own p before summing
// is unbiased (scaling a stack's sum by its mean size is not: jemalloc PR
// #1897). Pure functions, unit-tested (tests/unit/test_sampling.cpp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "model/process.h"
#include "model/stack.h"

namespace memtop {

// Largest --sample: bpf/sample.h scales a Q24 draw by T within 64 bits.
inline constexpr uint64_t kMaxSampleBytes = 1ull << 32;
// --heap-all, --cgroup, --container sample at this interval unless --exact.
inline constexpr uint64_t kDefaultWideSampleBytes = 512 * 1024;
// --python-objects -- CMD samples Python's objects in-process at this
// interval unless --exact or --sample (docs/design.md, "Sampled by
// default"): a trap per object costs ~100x the untraced run; at 64 KiB a
// line of 3 MB of objects is within ~15% (one sigma) and the run within
// tracemalloc's cost.
inline constexpr uint64_t kDefaultPythonSampleBytes = 64 * 1024;

// Probability that a Poisson process over bytes with mean interval `mean`
// samples a block of `size` bytes.
inline double sample_probability(uint64_t size, uint64_t mean) {
    return -std::expm1(-static_cast<double>(size) / static_cast<double>(mean));
}

// bpf/sample.h's table: log2(1 + i/256) in units of 2^-24.
inline std::array<uint32_t, 257> log2_fraction_table() {
    std::array<uint32_t, 257> t{};
    for (size_t i = 0; i < t.size(); i++)
        t[i] = static_cast<uint32_t>(std::lround(std::log2(1.0 + i / 256.0) * 16777216.0));
    return t;
}

// The kernel's sums for one (process, stack, block size): stats as read,
// every block of them `size` bytes. exact: counted, not sampled (weight 1):
// the Python domain samples pymalloc's objects at its sites and counts the
// blocks beneath exactly (bpf/pymalloc.h), both in one process's estimate.
struct SampledAgg {
    StackStats stats;
    uint64_t size = 0;
    bool exact = false;
};

// The probability a sampled aggregate's blocks had; 1 for counted ones.
inline double agg_probability(const SampledAgg& a, uint64_t mean) {
    return a.exact ? 1.0 : sample_probability(a.size, mean);
}

// A process's heap figures, estimated from its sampled aggregates.
struct HeapEstimate {
    int64_t bytes = 0;   // outstanding
    int64_t allocs = 0;  // outstanding blocks
    uint64_t alloc_bytes_total = 0;
    uint64_t allocs_total = 0;
    double peak_scale = 1.0;  // estimated / sampled bytes, for the peak (see apply_estimate)
    bool sampled = false;     // some of it was sampled (not only exact aggregates): an estimate
};

inline int64_t weigh(int64_t v, double p) {
    return static_cast<int64_t>(std::llround(static_cast<double>(v) / p));
}
inline uint64_t weigh(uint64_t v, double p) {
    return static_cast<uint64_t>(std::llround(static_cast<double>(v) / p));
}

// What one live block of `size` stands for: (bytes, blocks); itself when
// exact (mean 0). For --min-age's per-block sums.
inline std::pair<double, double> block_weight(uint64_t size, uint64_t mean) {
    if (!mean) return {static_cast<double>(size), 1.0};
    if (!size) return {0.0, 0.0};
    double p = sample_probability(size, mean);
    return {static_cast<double>(size) / p, 1.0 / p};
}

// One estimate per (process instance, stack): each size's sums divided by
// its p(size), then summed over sizes.
inline std::vector<StackStats> weigh_stacks(const std::vector<SampledAgg>& aggs, uint64_t mean) {
    std::map<std::pair<std::pair<uint32_t, uint32_t>, uint64_t>, StackStats> by_stack;
    for (const auto& a : aggs) {
        if (!a.size && !a.exact) continue;  // never sampled (p(0) = 0)
        double p = agg_probability(a, mean);
        auto& s = by_stack[{{a.stats.pid, a.stats.epoch}, a.stats.stack_id}];
        s.pid = a.stats.pid;
        s.epoch = a.stats.epoch;
        s.stack_id = a.stats.stack_id;
        s.bytes += weigh(a.stats.bytes, p);
        s.allocs += weigh(a.stats.allocs, p);
        s.alloc_bytes_total += weigh(a.stats.alloc_bytes_total, p);
        s.allocs_total += weigh(a.stats.allocs_total, p);
        s.temp_allocs += weigh(a.stats.temp_allocs, p);
        s.temp_bytes += weigh(a.stats.temp_bytes, p);
    }
    std::vector<StackStats> out;
    out.reserve(by_stack.size());
    for (auto& [k, s] : by_stack) out.push_back(s);
    return out;
}

// Per (pid, epoch): the process's estimated heap, the sum of its stacks'.
inline std::map<std::pair<uint32_t, uint32_t>, HeapEstimate> heap_estimates(const std::vector<SampledAgg>& aggs,
                                                                            uint64_t mean) {
    std::map<std::pair<uint32_t, uint32_t>, HeapEstimate> out;
    std::map<std::pair<uint32_t, uint32_t>, std::pair<int64_t, uint64_t>> sampled;  // outstanding, allocated
    for (const auto& a : aggs) {
        if (!a.size && !a.exact) continue;
        double p = agg_probability(a, mean);
        auto& e = out[{a.stats.pid, a.stats.epoch}];
        e.sampled |= !a.exact;
        e.bytes += weigh(a.stats.bytes, p);
        e.allocs += weigh(a.stats.allocs, p);
        e.alloc_bytes_total += weigh(a.stats.alloc_bytes_total, p);
        e.allocs_total += weigh(a.stats.allocs_total, p);
        auto& raw = sampled[{a.stats.pid, a.stats.epoch}];
        raw.first += a.stats.bytes;
        raw.second += a.stats.alloc_bytes_total;
    }
    for (auto& [k, e] : out) {
        // The blocks outstanding now are the likeliest mix of sizes at the
        // peak; with none, those ever allocated.
        auto [now, total] = sampled[k];
        if (now > 0)
            e.peak_scale = static_cast<double>(e.bytes) / static_cast<double>(now);
        else if (total)
            e.peak_scale = static_cast<double>(e.alloc_bytes_total) / static_cast<double>(total);
    }
    return out;
}

// A process's kernel numbers (sums of sampled blocks) replaced by estimates.
// The peak has no unbiased estimate from sums: the sampled peak is scaled by
// the process's estimated / sampled outstanding bytes (allocated bytes when
// nothing is outstanding), and is never below the estimate of now: an
// approximation, exact only when the mix of sizes at the peak is that of now.
inline void apply_estimate(ProcessStats& p, const HeapEstimate* e) {
    if (!e) {
        // Nothing sampled (or its aggregates were lost): no estimate but 0.
        p.heap_bytes = p.heap_peak_bytes = 0;
        p.allocs_total = p.frees_total = 0;
        return;
    }
    p.heap_peak_bytes = std::max(e->bytes, static_cast<int64_t>(std::llround(p.heap_peak_bytes * e->peak_scale)));
    p.heap_bytes = e->bytes;
    p.allocs_total = e->allocs_total;
    p.frees_total = e->allocs_total > static_cast<uint64_t>(std::max<int64_t>(e->allocs, 0))
                        ? e->allocs_total - static_cast<uint64_t>(std::max<int64_t>(e->allocs, 0))
                        : 0;
}

// The same for a process's Python object domain (its py_* numbers), whose
// objects were sampled in-process or at pymalloc's sites. A process of
// counted objects only (a fallback to the exact sites) keeps its numbers.
inline void apply_python_estimate(ProcessStats& p, const HeapEstimate& e) {
    if (!e.sampled) return;
    p.py_peak_bytes = std::max(e.bytes, static_cast<int64_t>(std::llround(p.py_peak_bytes * e.peak_scale)));
    p.py_bytes = e.bytes;
    p.py_allocs_total = e.allocs_total;
    int64_t live = std::max<int64_t>(e.allocs, 0);
    p.py_frees_total = e.allocs_total > static_cast<uint64_t>(live) ? e.allocs_total - static_cast<uint64_t>(live) : 0;
    p.py_sampled = true;
}

}  // namespace memtop
