#include "record/deltas.h"

#include <stdexcept>

namespace memtop {

namespace {

using nlohmann::json;

// The numbers of a stack that change from report to report, in the order
// a numbers-only delta lists them.
constexpr const char* kNumbers[] = {"bytes",        "allocs",      "alloc_bytes_total",
                                    "allocs_total", "temp_allocs", "temp_bytes"};

[[noreturn]] void malformed(const std::string& what) {
    throw std::runtime_error("malformed report: stack delta: " + what);
}

// A whole number that is not negative (as the reader parses it: unsigned;
// as encode_report makes it in memory: either kind).
bool whole(const json& v) {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

StackKey key_of(const json& stack) {
    const auto s = stack.find("stats");
    if (s == stack.end() || !s->is_object()) malformed("a stack without stats");
    auto field = [&](const char* name) -> uint64_t {
        const auto v = s->find(name);
        if (v == s->end() || !whole(*v)) malformed(std::string("a stack whose ") + name + " is not a number");
        return v->get<uint64_t>();
    };
    return {static_cast<uint32_t>(field("pid")), static_cast<uint32_t>(field("epoch")), field("stack_id")};
}

StackKey key_of_array(const json& k) {
    if (!k.is_array() || k.size() != 3 || !whole(k[0]) || !whole(k[1]) || !whole(k[2]))
        malformed("a key that is not [pid, epoch, stack_id]");
    return {k[0].get<uint32_t>(), k[1].get<uint32_t>(), k[2].get<uint64_t>()};
}

json key_json(const StackKey& k) {
    return json::array({std::get<0>(k), std::get<1>(k), std::get<2>(k)});
}

// Equal but for the numbers: the same frames, addresses and flags.
bool same_but_numbers(const json& a, const json& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a.items()) {
        if (k == "stats" || k == "ages" || k == "used_bytes") continue;
        const auto o = b.find(k);
        if (o == b.end() || *o != v) return false;
    }
    // The stats' other fields (the key) are equal by construction.
    return true;
}

}  // namespace

void StackDeltaWriter::encode(json& report) {
    auto all = report.find("all_stacks");
    if (all == report.end() || !all->is_array()) return;
    std::map<StackKey, json> now;
    for (auto& s : *all)
        if (!now.emplace(key_of(s), s).second) {
            // Two stacks with one key: this report stays whole.
            now.clear();
            for (auto& t : *all) now[key_of(t)] = t;
            prev_ = std::move(now);
            return;
        }
    json changed = json::array();
    for (const auto& [k, s] : now) {
        auto p = prev_.find(k);
        if (p != prev_.end() && p->second == s) continue;
        if (p == prev_.end() || !same_but_numbers(s, p->second)) {
            changed.push_back(s);
            continue;
        }
        json n = json::array();
        for (const char* f : kNumbers) n.push_back(s["stats"].value(f, json(0)));
        json d = {{"k", key_json(k)}, {"n", std::move(n)}};
        for (const char* f : {"ages", "used_bytes"})
            if (s.value(f, json()) != p->second.value(f, json())) d[f] = s.value(f, json());
        changed.push_back(std::move(d));
    }
    json gone = json::array();
    for (const auto& [k, s] : prev_)
        if (!now.count(k)) gone.push_back(key_json(k));
    report.erase(all);
    report["all_stacks_delta"] = {{"changed", std::move(changed)}, {"gone", std::move(gone)}};
    prev_ = std::move(now);
}

void StackDeltaReader::apply(json& report, bool materialize) {
    if (!report.is_object()) return;
    if (auto all = report.find("all_stacks"); all != report.end()) {
        if (!all->is_array()) return;  // decode_report says what is wrong
        state_.clear();
        for (const auto& s : *all) state_[key_of(s)] = s;
        if (!materialize) report.erase(all);
        return;
    }
    auto d = report.find("all_stacks_delta");
    if (d == report.end()) return;
    if (!d->is_object()) malformed("not an object");
    const auto changed = d->find("changed");
    const auto gone = d->find("gone");
    if (changed == d->end() || !changed->is_array() || gone == d->end() || !gone->is_array())
        malformed("without its changed and gone lists");
    for (const auto& k : *gone) state_.erase(key_of_array(k));
    for (const auto& c : *changed) {
        if (!c.is_object()) malformed("a changed stack that is not an object");
        if (!c.contains("k")) {
            state_[key_of(c)] = c;
            continue;
        }
        auto it = state_.find(key_of_array(c["k"]));
        if (it == state_.end()) malformed("numbers for a stack not seen before");
        const auto n = c.find("n");
        if (n == c.end() || !n->is_array() || n->size() != std::size(kNumbers)) malformed("numbers not a list of 6");
        for (size_t i = 0; i < std::size(kNumbers); i++) it->second["stats"][kNumbers[i]] = (*n)[i];
        for (const char* f : {"ages", "used_bytes"})
            if (auto a = c.find(f); a != c.end()) it->second[f] = *a;
    }
    report.erase(d);
    if (!materialize) return;
    json all = json::array();
    for (const auto& [k, s] : state_) all.push_back(s);
    report["all_stacks"] = std::move(all);
}

std::vector<json> SampleDeltaWriter::changed(std::map<uint32_t, json> now, std::vector<uint32_t>& gone) {
    std::vector<json> out;
    gone.clear();
    for (const auto& [pid, e] : now) {
        auto p = prev_.find(pid);
        if (p == prev_.end() || p->second != e) out.push_back(e);
    }
    for (const auto& [pid, e] : prev_)
        if (!now.count(pid)) gone.push_back(pid);
    prev_ = std::move(now);
    return out;
}

}  // namespace memtop
