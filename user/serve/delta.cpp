#include "serve/delta.h"

#include <map>
#include <set>
#include <tuple>

namespace memtop {

namespace {

using StackKey = std::tuple<uint32_t, uint32_t, uint64_t, std::vector<uint64_t>>;

StackKey key_of(const ReportStack& s) {
    return {s.stats.pid, s.stats.epoch, s.stats.stack_id, s.ips};
}

}  // namespace

Report heap_delta(const Report& start, const Report& end, std::optional<uint32_t> pid) {
    Report d;
    d.time = start.time;
    d.self = end.self;
    for (const auto& k : kLostKinds)
        d.lost[k.kind] = end.lost[k.kind] >= start.lost[k.kind] ? end.lost[k.kind] - start.lost[k.kind] : 0;

    // The start's stacks by identity; a stack listed twice is summed.
    std::map<StackKey, StackStats> before;
    for (const auto& s : start.all_stacks) {
        if (pid && s.stats.pid != *pid) continue;
        StackStats& b = before[key_of(s)];
        b.bytes += s.stats.bytes;
        b.allocs += s.stats.allocs;
        b.alloc_bytes_total += s.stats.alloc_bytes_total;
        b.allocs_total += s.stats.allocs_total;
    }
    std::map<StackKey, size_t> at;  // where each stack of the end is in d.all_stacks
    for (const auto& s : end.all_stacks) {
        if (pid && s.stats.pid != *pid) continue;
        auto [it, added] = at.try_emplace(key_of(s), d.all_stacks.size());
        if (added) {
            d.all_stacks.push_back(s);
        } else {
            StackStats& e = d.all_stacks[it->second].stats;
            e.bytes += s.stats.bytes;
            e.allocs += s.stats.allocs;
            e.alloc_bytes_total += s.stats.alloc_bytes_total;
            e.allocs_total += s.stats.allocs_total;
        }
    }
    // Cumulative counts only grow within a process instance; a smaller one
    // (not expected) gives 0 rather than a huge unsigned difference.
    auto since = [](uint64_t now, uint64_t then) { return now >= then ? now - then : 0; };
    for (auto& s : d.all_stacks) {
        auto b = before.find(key_of(s));
        if (b == before.end()) continue;
        s.stats.bytes -= b->second.bytes;
        s.stats.allocs -= b->second.allocs;
        s.stats.alloc_bytes_total = since(s.stats.alloc_bytes_total, b->second.alloc_bytes_total);
        s.stats.allocs_total = since(s.stats.allocs_total, b->second.allocs_total);
    }
    // Stacks gone by the end (their process ended): what they held is gone.
    std::set<StackKey> listed;
    for (const auto& s : start.all_stacks) {
        if (pid && s.stats.pid != *pid) continue;
        StackKey k = key_of(s);
        if (at.count(k) || !listed.insert(k).second) continue;
        ReportStack gone = s;
        gone.stats.bytes = -before[k].bytes;
        gone.stats.allocs = -before[k].allocs;
        gone.stats.alloc_bytes_total = 0;
        gone.stats.allocs_total = 0;
        d.all_stacks.push_back(std::move(gone));
    }
    std::erase_if(d.all_stacks, [](const ReportStack& s) {
        return s.stats.bytes == 0 && s.stats.allocs == 0 && s.stats.alloc_bytes_total == 0 && s.stats.allocs_total == 0;
    });

    std::set<std::pair<uint32_t, uint32_t>> procs;
    for (const auto* r : {&end, &start})
        for (const auto& p : r->processes)
            if (procs.insert({p.pid, p.epoch}).second) d.processes.push_back(p);
    return d;
}

std::string with_duration(std::string profile, int64_t duration_nanos) {
    // Profile.duration_nanos is field 10, an int64 varint: tag (10 << 3) | 0.
    profile.push_back(static_cast<char>(10 << 3));
    auto v = static_cast<uint64_t>(duration_nanos);
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        profile.push_back(static_cast<char>(v ? byte | 0x80 : byte));
    } while (v);
    return profile;
}

}  // namespace memtop
