#include "kernel/map_reader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <ctime>
#include <set>

#include "kernel/map_dump.h"
#include "kernel/records.h"
#include "memtop.h"

namespace memtop {

MapReader::MapReader(const KernelMaps& maps, double growth_weight, uint32_t max_stacks, uint64_t sample_bytes,
                     uint64_t python_sample_bytes)
    : maps_(maps),
      growth_weight_(growth_weight),
      max_stacks_(max_stacks),
      sample_bytes_(sample_bytes),
      python_sample_bytes_(python_sample_bytes ? python_sample_bytes : sample_bytes) {}

std::vector<ProcessStats> MapReader::heap_processes() const {
    std::vector<ProcessStats> out;
    for (const auto& [tgid, p] : dump_map<uint32_t, memtop_proc>(maps_.procs))
        out.push_back(process_from_kernel(tgid, p));
    if (sample_bytes_) {
        auto estimates = heap_estimates(read_sampled_aggs(), sample_bytes_);
        for (auto& p : out) {
            auto it = estimates.find({p.pid, p.epoch});
            apply_estimate(p, it == estimates.end() ? nullptr : &it->second);
        }
    }
    // The Python domain of a process whose objects are sampled in-process:
    // its kernel numbers are sums of sampled objects, estimated as read()
    // estimates them (a recording's samples are read here, between reports).
    if (python_sample_bytes_ && maps_.py_aggs >= 0) {
        std::vector<SampledAgg> sampled;
        for (const auto& [key, v] : dump_map<memtop_agg_key, memtop_agg_val>(maps_.py_aggs))
            if (key.size)
                sampled.push_back({{key.tgid, key.epoch, key.stack_id, v.bytes, v.allocs, v.alloc_bytes_total,
                                    v.allocs_total, v.temp_allocs, v.temp_bytes},
                                   key.size});
        if (!sampled.empty()) {
            const auto estimates = heap_estimates(sampled, python_sample_bytes_);
            for (auto& p : out)
                if (auto it = estimates.find({p.pid, p.epoch}); it != estimates.end())
                    apply_python_estimate(p, it->second);
        }
    }
    return out;
}

std::vector<SampledAgg> MapReader::read_sampled_aggs() const {
    std::vector<SampledAgg> out;
    for (const auto& [k, v] : dump_map<memtop_agg_key, memtop_agg_val>(maps_.aggs))
        out.push_back({{k.tgid, k.epoch, k.stack_id, v.bytes, v.allocs, v.alloc_bytes_total, v.allocs_total,
                        v.temp_allocs, v.temp_bytes},
                       k.size});
    return out;
}

std::vector<StackStats> MapReader::read_aggs(int fd) const {
    std::vector<StackStats> out;
    for (const auto& [k, v] : dump_map<memtop_agg_key, memtop_agg_val>(fd))
        out.push_back({k.tgid, k.epoch, k.stack_id, v.bytes, v.allocs, v.alloc_bytes_total, v.allocs_total,
                       v.temp_allocs, v.temp_bytes});
    return out;
}

std::vector<StackStats> MapReader::read_growth() const {
    std::vector<StackStats> out;
    if (maps_.growth < 0) return out;
    for (const auto& [k, v] : dump_map<memtop_agg_key, memtop_growth_val>(maps_.growth)) {
        StackStats s;
        s.pid = k.tgid;
        s.stack_id = k.stack_id;
        s.allocs = static_cast<int64_t>(v.samples);
        s.allocs_total = v.samples;
        s.bytes = static_cast<int64_t>(static_cast<double>(v.samples) * growth_weight_ + 0.5);
        s.alloc_bytes_total = static_cast<uint64_t>(s.bytes);
        s.epoch = k.epoch;  // the address space's id (bpf/growth.h)
        out.push_back(s);
    }
    return out;
}

std::map<uint32_t, MappedStats> MapReader::read_mapped() const {
    std::map<uint32_t, MappedStats> out;
    if (maps_.map_procs < 0) return out;
    for (const auto& [tgid, m] : dump_map<uint32_t, memtop_map_proc>(maps_.map_procs))
        out[tgid] = {m.mm_id, m.bytes, m.peak_bytes, m.maps_total};
    return out;
}

std::map<uint32_t, RssStats> MapReader::read_rss() const {
    std::map<uint32_t, RssStats> out;
    for (const auto& [tgid, r] : dump_map<uint32_t, memtop_rss>(maps_.rss))
        out[tgid] = rss_from_kernel(r.bytes, r.peak_bytes);
    return out;
}

LostCounters MapReader::read_lost() const {
    int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> per_cpu(ncpu > 0 ? ncpu : 1);
    LostCounters c;
    static_assert(std::size(kLostKinds) == MEMTOP_CNT__MAX);
    for (uint32_t i = 0; i < MEMTOP_CNT__MAX; i++) {
        if (bpf_map_lookup_elem(maps_.counters, &i, per_cpu.data()) != 0) continue;
        for (auto v : per_cpu) c.count[i] += v;
    }
    return c;
}

const RawStack* MapReader::stack(uint64_t id) {
    auto it = stack_cache_.find(id);
    if (it != stack_cache_.end()) return &it->second;
    memtop_stack s;
    if (bpf_map_lookup_elem(maps_.stacks, &id, &s) != 0) return nullptr;
    RawStack raw;
    raw.ips.assign(s.ips, s.ips + std::min<uint32_t>(s.nr, MEMTOP_MAX_FRAMES));
    raw.truncated = s.flags & MEMTOP_STACK_TRUNCATED;
    raw.complete = s.flags & MEMTOP_STACK_COMPLETE;
    return &stack_cache_.emplace(id, std::move(raw)).first->second;
}

std::vector<BlockAge> MapReader::block_ages() const {
    // The birth times are bpf_ktime_get_ns(): CLOCK_MONOTONIC.
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
    std::vector<BlockAge> out;
    for (const auto& [k, v] : dump_map<memtop_alloc_key, memtop_alloc_val>(maps_.allocs)) {
        uint64_t age_ns = now > v.birth_ns ? now - v.birth_ns : 0;
        out.push_back({k.tgid, k.epoch, v.stack_id, v.size, static_cast<double>(age_ns) / 1e9});
    }
    return out;
}

KernelSnapshot MapReader::read() {
    KernelSnapshot k;
    k.sample_bytes = sample_bytes_;
    if (sample_bytes_) {
        // Processes and stacks from one reading of the aggregates, so that a
        // process's estimate is the sum of its stacks'.
        auto aggs = read_sampled_aggs();
        k.heap_estimates = heap_estimates(aggs, sample_bytes_);
        for (const auto& [tgid, p] : dump_map<uint32_t, memtop_proc>(maps_.procs)) {
            k.heap.push_back(process_from_kernel(tgid, p));
            auto it = k.heap_estimates.find({tgid, p.epoch});
            apply_estimate(k.heap.back(), it == k.heap_estimates.end() ? nullptr : &it->second);
        }
        k.heap_stacks = weigh_stacks(aggs, sample_bytes_);
    } else {
        // Not heap_processes(): its Python estimates are applied below.
        for (const auto& [tgid, p] : dump_map<uint32_t, memtop_proc>(maps_.procs))
            k.heap.push_back(process_from_kernel(tgid, p));
        k.heap_stacks = read_aggs(maps_.aggs);
    }
    k.rss = read_rss();
    // Growth and mapping stacks are keyed by address space (epoch = mm_id,
    // bpf/growth.h, bpf/mappings.h): of a process whose address space now
    // is known, only that one's; the pages and mappings of an image before
    // an exec wait for the purge (their frames are not in this image's
    // maps). An ended process's are kept: the aggregator keeps those of the
    // address space its exit event names.
    if (maps_.mapped_aggs >= 0) k.mapped = read_mapped();
    auto now_or_ended = [&](const StackStats& s) {
        auto it = k.mapped.find(s.pid);
        return it == k.mapped.end() || it->second.mm_id == s.epoch;
    };
    for (auto& s : read_growth())
        if (now_or_ended(s)) k.growth_stacks.push_back(s);
    if (maps_.mapped_aggs >= 0)
        for (auto& s : read_aggs(maps_.mapped_aggs))
            if (now_or_ended(s)) k.mapping_stacks.push_back(s);
    // Python's object-allocator domain: counted at pymalloc's sites (key
    // size 0), or sampled in-process or at the sites (the object's size,
    // bpf/pymalloc.h): those weighed as the heap's. A sampled process's
    // counted blocks (those beneath pymalloc, kept exact) join its estimate
    // with weight 1.
    if (maps_.py_aggs >= 0) {
        std::vector<SampledAgg> aggs;
        bool sampled = false;
        for (const auto& [key, v] : dump_map<memtop_agg_key, memtop_agg_val>(maps_.py_aggs)) {
            StackStats s{key.tgid,       key.epoch,     key.stack_id, v.bytes, v.allocs, v.alloc_bytes_total,
                         v.allocs_total, v.temp_allocs, v.temp_bytes};
            if (!python_sample_bytes_) {
                k.python_stacks.push_back(s);
                continue;
            }
            aggs.push_back({s, key.size, key.size == 0});
            sampled |= key.size != 0;
        }
        if (sampled) {
            for (auto& s : weigh_stacks(aggs, python_sample_bytes_)) k.python_stacks.push_back(s);
            k.python_estimates = heap_estimates(aggs, python_sample_bytes_);
            std::erase_if(k.python_estimates, [](const auto& e) { return !e.second.sampled; });
            for (auto& p : k.heap) {
                auto it = k.python_estimates.find({p.pid, p.epoch});
                if (it != k.python_estimates.end()) apply_python_estimate(p, it->second);
            }
        } else {
            for (const auto& a : aggs) k.python_stacks.push_back(a.stats);
        }
    }
    if (stack_cache_.size() > 4 * size_t(max_stacks_)) stack_cache_.clear();  // purged since: read again
    for (const auto* list : {&k.heap_stacks, &k.growth_stacks, &k.mapping_stacks, &k.python_stacks})
        for (const auto& s : *list)
            if (s.stack_id && !k.stacks.count(s.stack_id))
                if (const RawStack* raw = stack(s.stack_id)) k.stacks.emplace(s.stack_id, *raw);
    k.lost = read_lost();
    return k;
}

}  // namespace memtop
