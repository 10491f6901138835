#include "aggregate/aggregator.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <set>

#include "aggregate/select.h"
#include "model/footprint.h"
#include "model/sampling.h"

namespace memtop {

ReportStack report_stack(const StackStats& s, const KernelSnapshot& k) {
    ReportStack rs;
    rs.stats = s;
    if (s.stack_id)
        if (auto it = k.stacks.find(s.stack_id); it != k.stacks.end()) {
            rs.ips = it->second.ips;
            rs.truncated = it->second.truncated;
            rs.complete = it->second.complete;
        }
    return rs;
}

std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::vector<AgeBucket>> age_histograms(
    const std::vector<BlockAge>& blocks, uint64_t sample_bytes) {
    // --sample: each block weighted by what it stands for, summed before
    // rounding (model/sampling.h).
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::vector<std::pair<double, double>>> sums;
    for (const auto& b : blocks) {
        auto& h = sums[{b.pid, b.epoch, b.stack_id}];
        if (h.empty()) h.resize(std::size(kAgeBounds));
        size_t i = 0;
        while (kAgeBounds[i] >= 0 && b.age_seconds >= kAgeBounds[i]) i++;
        auto [bytes, blocks_of] = block_weight(b.size, sample_bytes);
        h[i].first += bytes;
        h[i].second += blocks_of;
    }
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::vector<AgeBucket>> out;
    for (const auto& [k, h] : sums) {
        auto& o = out[k];
        for (size_t i = 0; i < h.size(); i++)
            o.push_back({kAgeBounds[i], static_cast<uint64_t>(std::llround(h[i].first)),
                         static_cast<uint64_t>(std::llround(h[i].second))});
    }
    return out;
}

std::map<std::tuple<uint32_t, uint32_t, uint64_t>, int64_t> glibc_used_bytes(const std::vector<BlockAge>& blocks,
                                                                             uint64_t sample_bytes,
                                                                             std::optional<double> min_age) {
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, double> sums;
    for (const auto& b : blocks) {
        if (min_age && b.age_seconds < *min_age) continue;
        // The block stands for 1/p(size) blocks of its size (model/sampling.h).
        double count = block_weight(b.size, sample_bytes).second;
        sums[{b.pid, b.epoch, b.stack_id}] += count * static_cast<double>(glibc_used_bytes(b.size));
    }
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, int64_t> out;
    for (const auto& [k, v] : sums) out[k] = std::llround(v);
    return out;
}

UnwindSummary unwind_summary(const std::vector<StackStats>& stacks, const KernelSnapshot& k) {
    UnwindSummary u;
    u.tables = k.unwind_tables;
    if (k.unwind_tables) {
        u.table_files = k.tables.files;
        u.table_failed = k.tables.failed;
        u.table_rows = k.tables.rows;
        u.table_capacity = k.tables.capacity;
        u.table_bytes = k.tables.bytes;
    }
    std::set<std::pair<uint32_t, uint64_t>> seen;
    for (const auto& s : stacks) {
        if (!s.stack_id || !seen.insert({s.pid, s.stack_id}).second) continue;
        auto it = k.stacks.find(s.stack_id);
        if (it == k.stacks.end()) continue;
        u.stacks++;
        if (it->second.complete) continue;
        u.incomplete++;
        u.incomplete_ends.push_back({s.pid, it->second.ips.empty() ? 0 : it->second.ips.back()});
    }
    return u;
}

void hide_untraced(Report& r, const std::set<int>& hidden) {
    if (hidden.empty()) return;
    for (auto& p : r.processes) {
        if (!hidden.count(static_cast<int>(p.pid))) continue;
        p.heap_traced = false;
        p.heap_bytes = p.heap_peak_bytes = 0;
        p.allocs_total = p.frees_total = 0;
    }
    auto of_hidden = [&](const ReportStack& s) { return hidden.count(static_cast<int>(s.stats.pid)) > 0; };
    std::erase_if(r.stacks, of_hidden);
    std::erase_if(r.all_stacks, of_hidden);
}

// An ended process as a report lists it: its final numbers from the exit
// event; in the system view also what was known of it before (identity,
// the peak seen by earlier reports).
ProcessStats Aggregator::ended_process(ProcessStats p, const KernelSnapshot& k) {
    p.exited = true;
    p.heap_traced = p.epoch != 0;
    p.mapped_known = k.mappings_recorded && (opt_.system_view || p.epoch);
    if (!p.mapped_known) p.mapped_bytes = p.mapped_peak_bytes = 0;
    if (opt_.system_view) {
        auto it = system_.find(p.pid);
        if (it != system_.end()) {
            if (p.rss) p.rss->peak = std::max(p.rss->peak, it->second.last.peak);
            if (it->second.have_identity) {
                p.has_identity = true;
                p.cgroup = it->second.identity.cgroup;
                p.container = it->second.identity.container;
                p.nspid = it->second.identity.nspid;
            }
            system_.erase(it);
        }
    }
    return p;
}

Report Aggregator::build(const KernelSnapshot& k, const std::vector<ProcessStats>& ended, ProcessFacts& facts,
                         const ReportMoment& m) {
    Report r;
    r.time = m.time;
    r.final = m.final;
    r.sample_bytes = k.sample_bytes;
    r.processes = k.heap;
    std::set<std::pair<uint32_t, uint32_t>> shown;
    for (const auto& p : r.processes) shown.insert({p.pid, p.epoch});
    for (const auto& e : ended) {
        // Without the system view, a process that was not heap-traced is
        // not one of the report's, unless it is a target (which may end
        // before its first allocation: `memtop -- /bin/true`).
        bool target = m.targets.count(e.pid) > 0;
        if (!opt_.system_view && e.epoch == 0 && !target) continue;
        if (!shown.insert({e.pid, e.epoch}).second) continue;
        r.processes.push_back(ended_process(e, k));
        if (k.sample_bytes && e.epoch) {
            // The exit event's numbers are sums of sampled blocks; the
            // process's aggregates are still there (purged after this report).
            auto it = k.heap_estimates.find({e.pid, e.epoch});
            apply_estimate(r.processes.back(), it == k.heap_estimates.end() ? nullptr : &it->second);
        }
        // Its Python objects, when sampled in-process: the same, from their aggregates.
        if (auto it = k.python_estimates.find({e.pid, e.epoch}); it != k.python_estimates.end())
            apply_python_estimate(r.processes.back(), it->second);
        if (target) r.processes.back().heap_traced = true;
    }
    if (opt_.system_view) {
        std::map<uint32_t, ProcessStats> heap;
        for (auto& p : r.processes)
            if (!p.exited) heap[p.pid] = p;
        std::erase_if(r.processes, [](const ProcessStats& p) { return !p.exited; });
        add_system_view(r, k, heap, facts, m.now);
    } else {
        add_targets(r, k, m.targets, facts, m.now);
    }
    add_mapped(r, k);
    order_processes(r.processes);

    std::vector<StackStats> candidates;
    for (const auto& s : k.heap_stacks)
        if (shown.count({s.pid, s.epoch})) candidates.push_back(s);
    // --min-age: outstanding means outstanding for at least that long.
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::vector<AgeBucket>> ages;
    if (opt_.min_age && k.blocks_read) {
        ages = age_histograms(k.blocks, k.sample_bytes);
        std::map<std::tuple<uint32_t, uint32_t, uint64_t>, std::pair<double, double>> old;
        for (const auto& b : k.blocks)
            if (b.age_seconds >= *opt_.min_age) {
                auto& o = old[{b.pid, b.epoch, b.stack_id}];
                auto [bytes, blocks] = block_weight(b.size, k.sample_bytes);  // estimates under --sample
                o.first += bytes;
                o.second += blocks;
            }
        for (auto& s : candidates) {
            auto it = old.find({s.pid, s.epoch, s.stack_id});
            s.bytes = it == old.end() ? 0 : std::llround(it->second.first);
            s.allocs = it == old.end() ? 0 : std::llround(it->second.second);
        }
        r.min_age = opt_.min_age;
    }
    r.unwind = unwind_summary(candidates, k);
    if (opt_.lines_file) {
        // Every stack, not only the top ones: a line's total is the sum.
        r.lines = LineReport{*opt_.lines_file, "", {}};
        for (const auto& s : candidates)
            if (s.stack_id) r.line_stacks.push_back(report_stack(s, k));
        // Python's object-allocator domain too: a Python line's objects
        // (bpf/pymalloc.h) are what memory_profiler's table is about.
        for (const auto& s : k.python_stacks)
            if (s.stack_id) r.line_stacks.push_back(report_stack(s, k));
    }
    if (m.all_stacks || m.ended_all_stacks) {
        std::set<std::pair<uint32_t, uint32_t>> ended;
        for (const auto& p : r.processes)
            if (p.exited) ended.insert({p.pid, p.epoch});
        for (const auto& s : candidates)
            if ((s.allocs_total || s.bytes || s.allocs) && (m.all_stacks || ended.count({s.pid, s.epoch})))
                r.all_stacks.push_back(report_stack(s, k));
    }
    r.stack_order = opt_.order;
    std::map<std::tuple<uint32_t, uint32_t, uint64_t>, int64_t> used;
    if (m.glibc_heap && k.blocks_read) used = glibc_used_bytes(k.blocks, k.sample_bytes, opt_.min_age);
    for (const auto& s : top_stacks(std::move(candidates), opt_.top, m.focus, opt_.order)) {
        r.stacks.push_back(report_stack(s, k));
        if (auto it = ages.find({s.pid, s.epoch, s.stack_id}); it != ages.end()) r.stacks.back().ages = it->second;
        if (m.glibc_heap && k.blocks_read) {
            auto it = used.find({s.pid, s.epoch, s.stack_id});
            r.stacks.back().used_bytes = it == used.end() ? 0 : it->second;
        }
    }
    // Which code grew resident memory, and mapped anonymous memory, for the
    // processes in this report.
    std::set<uint32_t> shown_pids;
    for (const auto& p : r.processes) shown_pids.insert(p.pid);
    auto of_shown = [&](const std::vector<StackStats>& list) {
        std::vector<StackStats> out;
        for (const auto& s : list)
            if (shown_pids.count(s.pid)) out.push_back(s);
        return out;
    };
    // Growth and mapping stacks are keyed by address space (epoch = mm_id):
    // of an ended process, those of the one its exit event names (an image
    // it exec'd from is not its; the snapshot keeps a live process's now).
    std::map<uint32_t, uint32_t> ended_space;
    for (const auto& e : ended)
        if (e.mm_id) ended_space[e.pid] = e.mm_id;
    auto of_space = [&](std::vector<StackStats> list) {
        std::erase_if(list, [&](const StackStats& s) {
            auto it = ended_space.find(s.pid);
            return it != ended_space.end() && it->second != s.epoch;
        });
        return list;
    };
    for (const auto& g : top_stacks(of_space(of_shown(k.growth_stacks)), opt_.top))
        r.growth_stacks.push_back(report_stack(g, k));
    for (const auto& s : top_stacks(of_space(of_shown(k.mapping_stacks)), opt_.top))
        r.mappings.push_back(report_stack(s, k));
    // In the heap stacks' order (--sort): `allocated` lists the lines whose
    // objects were all freed too.
    // The screen's detail view (focus): that process's top Python stacks too.
    for (const auto& s : top_stacks(of_shown(k.python_stacks), opt_.top, m.focus, opt_.order))
        r.python_stacks.push_back(report_stack(s, k));
    // The file exports' Python stacks (model/report.h): in the final report
    // those of every process shown; before it, those of the processes that
    // ended (the run's summary files and `memtop report` add them again).
    if (m.final ? m.all_stacks : m.all_stacks || m.ended_all_stacks) {
        std::set<std::pair<uint32_t, uint32_t>> ended;
        for (const auto& p : r.processes)
            if (p.exited) ended.insert({p.pid, p.epoch});
        std::vector<StackStats> any;
        for (const auto& s : of_shown(k.python_stacks))
            if ((s.allocs_total || s.bytes || s.allocs) && (m.final || ended.count({s.pid, s.epoch}))) any.push_back(s);
        add_python_export(r, std::move(any), k);
    }
    r.python_sites = k.py_sites;
    r.python_sites_skipped = k.py_sites_skipped;
    r.python_sampled = !k.python_estimates.empty();
    r.lost = k.lost;
    r.self = m.self;
    r.self.probes = k.probes;
    r.self.kernel_bytes = k.kernel_bytes;
    r.self.python_processes = k.python_processes;
    r.host = facts.host_memory();
    hide_untraced(r, m.hidden);
    return r;
}

// The top -T of `any` as the heap's list has them, and one remainder per
// process instance for the rest: every stack of an exactly counted
// start-up made a report of hundreds of MB, named for minutes.
void Aggregator::add_python_export(Report& r, std::vector<StackStats> any, const KernelSnapshot& k) const {
    std::set<std::tuple<uint32_t, uint32_t, uint64_t>> listed;
    auto list = [&](const std::vector<StackStats>& top) {
        for (const auto& s : top) {
            listed.insert({s.pid, s.epoch, s.stack_id});
            r.all_python_stacks.push_back(report_stack(s, k));
        }
    };
    list(top_stacks(any, opt_.top, std::nullopt, opt_.order));
    // A CPython frees its objects as it exits: by outstanding bytes a
    // final report often lists none. The profiles are of allocations too
    // (alloc_space): the places left go to the most allocated.
    if (r.all_python_stacks.size() < opt_.top) {
        std::vector<StackStats> others;
        for (const auto& s : any)
            if (!listed.count({s.pid, s.epoch, s.stack_id})) others.push_back(s);
        list(top_stacks(std::move(others), opt_.top - r.all_python_stacks.size(), std::nullopt, StackOrder::Allocated));
    }
    std::map<std::pair<uint32_t, uint32_t>, StackRemainder> rest;
    for (const auto& s : any) {
        if (listed.count({s.pid, s.epoch, s.stack_id})) continue;
        StackRemainder& o = rest[{s.pid, s.epoch}];
        o.stacks++;
        o.stats.pid = s.pid, o.stats.epoch = s.epoch;
        o.stats.bytes += s.bytes;
        o.stats.allocs += s.allocs;
        o.stats.alloc_bytes_total += s.alloc_bytes_total;
        o.stats.allocs_total += s.allocs_total;
        o.stats.temp_allocs += s.temp_allocs;
        o.stats.temp_bytes += s.temp_bytes;
    }
    for (auto& [key, o] : rest) r.python_rest.push_back(o);
}

// Anonymous memory mapped per live process: every process in the system
// view, the traced ones otherwise (the kernel records only theirs).
void Aggregator::add_mapped(Report& r, const KernelSnapshot& k) const {
    if (!k.mappings_recorded) return;
    for (auto& p : r.processes) {
        if (p.exited || (!opt_.system_view && !p.heap_traced)) continue;
        p.mapped_known = true;
        if (auto it = k.mapped.find(p.pid); it != k.mapped.end()) {
            p.mapped_bytes = it->second.bytes;
            p.mapped_peak_bytes = it->second.peak;
        }
    }
}

// What a report says of a live process's resident memory: the kernel's
// counters (kmem:rss_stat), or /proc's for a process whose counters have not
// changed since memtop started; and its growth since the previous report.
void Aggregator::resident(ProcessStats& p, SystemProcess& sp, const KernelSnapshot& k, ProcessFacts& facts, double dt) {
    auto kr = k.rss.find(p.pid);
    if (kr == k.rss.end() && !sp.seed) {
        sp.seed = facts.resident(p.pid);
        if (!sp.seed) return;  // gone, or a kernel thread
        sp.seed->peak = sp.seed->resident();
    }
    RssStats cur = kr != k.rss.end() ? kr->second : *sp.seed;
    if (sp.seed) cur.peak = std::max(cur.peak, sp.seed->peak);
    sp.last = cur;
    p.rss = cur;
    p.growth_bytes = sp.prev_resident < 0 ? 0 : cur.resident() - sp.prev_resident;
    p.growth_rate = dt > 0 ? p.growth_bytes / dt : 0;
    sp.grow_streak = p.growth_bytes > 0 ? sp.grow_streak + 1 : 0;
    p.growing = sp.grow_streak >= kGrowingIntervals;
    sp.prev_resident = cur.resident();
}

double Aggregator::since_last_report(std::chrono::steady_clock::time_point now) {
    double dt = last_report_ == std::chrono::steady_clock::time_point{}
                    ? 0
                    : std::chrono::duration<double>(now - last_report_).count();
    last_report_ = now;
    return dt;
}

// With a target: the traced processes, each target listed even before its
// first allocation (its heap 0), with resident memory and growth as the
// system view has them.
void Aggregator::add_targets(Report& r, const KernelSnapshot& k, const std::set<uint32_t>& targets, ProcessFacts& facts,
                             std::chrono::steady_clock::time_point now) {
    double dt = since_last_report(now);
    std::set<uint32_t> listed;
    for (const auto& p : r.processes)
        if (!p.exited) listed.insert(p.pid);
    for (uint32_t pid : targets) {
        if (listed.count(pid)) continue;
        auto seed = facts.resident(pid);
        if (!seed) continue;  // not started yet, or gone
        ProcessStats p;
        p.pid = pid;
        p.comm = facts.comm(pid);
        r.processes.push_back(std::move(p));
        listed.insert(pid);
    }
    for (auto& p : r.processes)
        if (!p.exited) resident(p, system_[p.pid], k, facts, dt);
    std::erase_if(system_, [&](const auto& e) { return !listed.count(e.first); });
}

// Every process's resident memory. The kernel keeps it current through
// kmem:rss_stat; /proc is read once per process, for the numbers of a
// process whose counters have not changed since memtop started, and for its
// name and identity.
void Aggregator::add_system_view(Report& r, const KernelSnapshot& k, const std::map<uint32_t, ProcessStats>& heap,
                                 ProcessFacts& facts, std::chrono::steady_clock::time_point now) {
    double dt = since_last_report(now);
    std::set<uint32_t> alive;
    for (uint32_t pid : facts.live_pids()) alive.insert(pid);
    for (uint32_t pid : alive) {
        ProcessStats p;
        if (auto h = heap.find(pid); h != heap.end()) {
            p = h->second;
        } else {
            p.pid = pid;
            p.heap_traced = false;
        }
        auto it = system_.find(pid);
        bool fresh = it == system_.end();
        if (fresh) it = system_.emplace(pid, SystemProcess{}).first;
        SystemProcess& sp = it->second;
        resident(p, sp, k, facts, dt);
        if (!p.rss) {  // gone, or a kernel thread
            if (fresh) system_.erase(it);
            continue;
        }
        if (!p.heap_traced) p.comm = facts.comm(pid);
        if (!sp.have_identity) {
            sp.identity = facts.identity(pid);
            sp.have_identity = true;
        }
        p.has_identity = true;
        p.cgroup = sp.identity.cgroup;
        p.container = sp.identity.container;
        p.nspid = sp.identity.nspid;
        r.processes.push_back(std::move(p));
    }
    std::erase_if(system_, [&](const auto& e) { return !alive.count(e.first); });
}

}  // namespace memtop
