#include "record/diff.h"

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <map>
#include <tuple>

namespace memtop {

namespace {

// Field and frame separators that no name holds.
constexpr char kField = '\x1f', kFrame = '\x1e';

// A perf map is named by the pid that wrote it ("[perf-4242.map]"), which
// differs between runs: what it names is the same.
std::string module_key(const std::optional<std::string>& m) {
    if (!m) return "";
    if (m->rfind("[perf-", 0) == 0) return "[perf map]";
    return *m;
}

void add(std::string& key, const std::optional<std::string>& s) {
    key += s.value_or("");
    key += kField;
}

void add(std::string& key, const std::optional<int>& v) {
    if (v) key += std::to_string(*v);
    key += kField;
}

DiffSide side_of(const StackStats& s) {
    return {s.bytes, s.allocs, static_cast<int64_t>(s.alloc_bytes_total), static_cast<int64_t>(s.allocs_total)};
}

void sum(DiffSide& into, const DiffSide& s) {
    into.bytes += s.bytes;
    into.allocs += s.allocs;
    into.alloc_bytes_total += s.alloc_bytes_total;
    into.allocs_total += s.allocs_total;
}

bool same(const DiffSide& a, const DiffSide& b) {
    return a.bytes == b.bytes && a.allocs == b.allocs && a.alloc_bytes_total == b.alloc_bytes_total &&
           a.allocs_total == b.allocs_total;
}

}  // namespace

DiffSide DiffStack::change() const {
    return {now.bytes - base.bytes, now.allocs - base.allocs, now.alloc_bytes_total - base.alloc_bytes_total,
            now.allocs_total - base.allocs_total};
}

std::string diff_key(const std::string& comm, const std::vector<Frame>& frames, bool stored) {
    std::string key = comm;
    key += kFrame;
    if (!stored) return key + "[stack not stored]";
    for (const auto& f : frames) {
        if (f.function) {
            add(key, f.function);
        } else if (f.module && f.mapping) {
            char buf[32];
            snprintf(buf, sizeof buf, "+0x%" PRIx64, f.address - f.mapping->start + f.mapping->offset);
            key += buf;
            key += kField;
        } else if (!f.module) {
            char buf[32];
            snprintf(buf, sizeof buf, "0x%" PRIx64, f.address);
            key += buf;
            key += kField;
        } else {
            key += "?";  // a module without its mapping: nothing stable to name it by
            key += kField;
        }
        add(key, std::optional<std::string>(module_key(f.module)));
        add(key, f.file);
        add(key, f.line);
        for (const auto& in : f.inlined) {
            add(key, in.function);
            add(key, in.file);
            add(key, in.line);
        }
        key += kFrame;
    }
    return key;
}

namespace {

// A side's Python-domain stacks as a diff matches them: the listed ones,
// and the rest as one stack of kOtherPythonStacks.
std::vector<ReportStack> python_side(const Report& r) {
    return python_profile_stacks(r, [](const StackRemainder& rest) {
        ReportStack s;
        s.stats = rest.stats;
        s.stats.stack_id = UINT64_MAX;  // stored: it has a frame that names it
        Frame f;
        f.function = kOtherPythonStacks;
        s.frames.push_back(std::move(f));
        return s;
    });
}

bool has_python(const Report& r) {
    if (!r.python_stacks.empty() || !r.all_python_stacks.empty() || !r.python_rest.empty()) return true;
    for (const auto& p : r.processes)
        if (p.py_allocs_total || p.py_frees_total) return true;
    return false;
}

// NEW minus BASE over two lists of stacks, each process's by its comm.
void diff_lists(const Report& base, const std::vector<ReportStack>& base_stacks, const Report& now,
                const std::vector<ReportStack>& now_stacks, std::vector<DiffStack>& stacks,
                std::vector<DiffStack>& churn, DiffSide& base_total, DiffSide& now_total, size_t& unchanged) {
    struct Entry {
        DiffStack ds;
        bool named_by_now = false;
    };
    std::map<std::string, Entry> by_key;  // ordered: equal changes keep one order
    auto take = [&](const Report& r, const std::vector<ReportStack>& list, bool is_now) {
        std::map<std::pair<uint32_t, uint32_t>, std::string> comm;
        for (const auto& p : r.processes) comm[{p.pid, p.epoch}] = p.comm;
        for (const auto& s : list) {
            auto c = comm.find({s.stats.pid, s.stats.epoch});
            std::string name = c != comm.end() ? c->second : "?";
            bool stored = s.stats.stack_id != 0;
            auto [it, added] = by_key.try_emplace(diff_key(name, s.frames, stored));
            Entry& e = it->second;
            // NEW names a stack both sides have (its pid and addresses are
            // the ones a user can still look at).
            if (added || (is_now && !e.named_by_now)) {
                e.ds.comm = name;
                e.ds.pid = s.stats.pid, e.ds.epoch = s.stats.epoch;
                e.ds.frames = s.frames;
                e.ds.stored = stored;
                e.named_by_now = is_now;
            }
            sum(is_now ? e.ds.now : e.ds.base, side_of(s.stats));
            sum(is_now ? now_total : base_total, side_of(s.stats));
        }
    };
    take(base, base_stacks, false);
    take(now, now_stacks, true);
    for (auto& [key, e] : by_key) {
        if (same(e.ds.base, e.ds.now)) {
            unchanged++;
            continue;
        }
        DiffSide c = e.ds.change();
        (c.bytes || c.allocs ? stacks : churn).push_back(std::move(e.ds));
    }
    // Largest growth of outstanding bytes first, then of outstanding
    // allocations, then of bytes allocated in all; equal ones by comm and
    // leaf name, so the order is the same every time.
    auto by_growth = [](const DiffStack& a, const DiffStack& b) {
        auto ca = a.change(), cb = b.change();
        return std::make_tuple(-ca.bytes, -ca.allocs, -ca.alloc_bytes_total) <
               std::make_tuple(-cb.bytes, -cb.allocs, -cb.alloc_bytes_total);
    };
    std::stable_sort(stacks.begin(), stacks.end(), by_growth);
    std::stable_sort(churn.begin(), churn.end(), by_growth);
}

}  // namespace

ReportDiff diff_reports(const Report& base, const Report& now) {
    ReportDiff d;
    diff_lists(base, base.all_stacks, now, now.all_stacks, d.stacks, d.churn, d.base_total, d.now_total, d.unchanged);
    d.python = has_python(base) || has_python(now);
    if (d.python)
        diff_lists(base, python_side(base), now, python_side(now), d.python_stacks, d.python_churn, d.python_base_total,
                   d.python_now_total, d.python_unchanged);
    return d;
}

}  // namespace memtop
