#include "aggregate/ended_targets.h"

#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "aggregate/select.h"

namespace memtop {

namespace {

using StackKey = std::tuple<uint32_t, uint32_t, uint64_t>;  // pid, epoch, stack id

StackKey key_of(const StackStats& s) {
    return {s.pid, s.epoch, s.stack_id};
}

// `stacks` cut to the top n (and focus's) in `order`, as the aggregator
// selects a report's stacks.
std::vector<ReportStack> rank(std::vector<ReportStack> stacks, size_t n, std::optional<uint32_t> focus,
                              StackOrder order) {
    std::vector<StackStats> stats;
    std::map<StackKey, ReportStack> by_key;
    for (auto& s : stacks) {
        stats.push_back(s.stats);
        StackKey k = key_of(s.stats);
        by_key.emplace(k, std::move(s));
    }
    std::vector<ReportStack> out;
    for (const auto& s : top_stacks(std::move(stats), n, focus, order)) {
        auto it = by_key.find(key_of(s));
        if (it == by_key.end()) continue;
        out.push_back(std::move(it->second));
        by_key.erase(it);
    }
    return out;
}

}  // namespace

void EndedTargets::keep(const Report& r) {
    order_ = r.stack_order;
    std::set<std::pair<uint32_t, uint32_t>> kept;
    for (const auto& p : r.processes) {
        if (!p.exited) continue;
        if (processes_.size() >= max_processes_) {
            not_kept_++;
            continue;
        }
        processes_.push_back(p);
        kept.insert({p.pid, p.epoch});
    }
    if (kept.empty()) return;
    for (const auto& s : r.all_stacks) {
        if (!kept.count({s.stats.pid, s.stats.epoch})) continue;
        if (all_stacks_.size() >= max_all_stacks_)
            all_not_kept_++;
        else
            all_stacks_.push_back(s);
    }
    // The Python domain's: its export lists (a list and the rest), whole.
    for (const auto& s : r.all_python_stacks) {
        if (!kept.count({s.stats.pid, s.stats.epoch})) continue;
        if (all_stacks_.size() + all_python_.size() >= max_all_stacks_)
            all_not_kept_++;
        else
            all_python_.push_back(s);
    }
    for (const auto& rest : r.python_rest)
        if (kept.count({rest.stats.pid, rest.stats.epoch})) python_rest_.push_back(rest);
    keep_top(r.stacks, kept, stacks_);
    keep_top(r.python_stacks, kept, python_stacks_);
}

void EndedTargets::keep_top(const std::vector<ReportStack>& from, const std::set<std::pair<uint32_t, uint32_t>>& kept,
                            std::vector<ReportStack>& into) const {
    bool added = false;
    for (const auto& s : from)
        if (kept.count({s.stats.pid, s.stats.epoch})) {
            into.push_back(s);
            added = true;
        }
    // Only the top -T can ever be in the final report: the rest is not kept.
    if (added && into.size() > top_n_) into = rank(std::move(into), top_n_, std::nullopt, order_);
}

void EndedTargets::add_to(Report& r, std::optional<uint32_t> focus) const {
    if (processes_.empty()) return;
    std::set<std::pair<uint32_t, uint32_t>> listed;
    for (const auto& p : r.processes) listed.insert({p.pid, p.epoch});
    std::set<std::pair<uint32_t, uint32_t>> added;
    for (const auto& p : processes_) {
        if (!listed.insert({p.pid, p.epoch}).second) continue;
        r.processes.push_back(p);
        r.processes.back().reported_before = true;
        added.insert({p.pid, p.epoch});
    }
    if (added.empty()) return;
    order_processes(r.processes);
    auto of_added = [&](const auto& x) { return added.count({x.stats.pid, x.stats.epoch}) > 0; };
    for (const auto& s : all_stacks_)
        if (of_added(s)) r.all_stacks.push_back(s);
    for (const auto& s : all_python_)
        if (of_added(s)) r.all_python_stacks.push_back(s);
    for (const auto& rest : python_rest_)
        if (of_added(rest)) r.python_rest.push_back(rest);
    for (auto [kept, list] : {std::pair{&stacks_, &r.stacks}, std::pair{&python_stacks_, &r.python_stacks}}) {
        std::vector<ReportStack> stacks = *list;
        for (const auto& s : *kept)
            if (of_added(s)) stacks.push_back(s);
        if (stacks.size() != list->size()) *list = rank(std::move(stacks), top_n_, focus, r.stack_order);
    }
}

}  // namespace memtop
