#include "views/tui/detail.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "views/tui/format.h"

namespace memtop::tui {

void History::record(const std::vector<Row>& rows, std::optional<uint32_t> keep) {
    std::set<uint32_t> seen;
    for (const auto& r : rows) {
        if (!seen.insert(r.pid).second) continue;  // an exited instance and its successor: the first
        auto& q = samples_[r.pid];
        q.push_back({r.rss, r.heap});
        while (q.size() > capacity_) q.pop_front();
    }
    std::erase_if(samples_, [&](const auto& e) { return !seen.count(e.first) && e.first != keep; });
}

std::vector<std::optional<int64_t>> History::rss(uint32_t pid) const {
    std::vector<std::optional<int64_t>> out;
    auto it = samples_.find(pid);
    if (it != samples_.end())
        for (const auto& s : it->second) out.push_back(s.rss);
    return out;
}

std::vector<std::optional<int64_t>> History::heap(uint32_t pid) const {
    std::vector<std::optional<int64_t>> out;
    auto it = samples_.find(pid);
    if (it != samples_.end())
        for (const auto& s : it->second) out.push_back(s.heap);
    return out;
}

void StackList::update(const Report& r, uint32_t pid) {
    std::vector<Item> heap, growth, python;
    for (const auto& s : r.stacks)
        if (s.stats.pid == pid) heap.push_back({Heap, s});
    for (const auto& s : r.growth_stacks)
        if (s.stats.pid == pid) growth.push_back({Growth, s});
    for (const auto& s : r.python_stacks)
        if (s.stats.pid == pid) python.push_back({Python, s});
    python_.reset();
    for (const auto& p : r.processes)
        if (p.pid == pid && !p.exited && (p.py_allocs_total || p.py_frees_total)) python_ = p;
    auto by_bytes = [](const Item& a, const Item& b) {
        if (a.stack.stats.bytes != b.stack.stats.bytes) return a.stack.stats.bytes > b.stack.stats.bytes;
        return a.stack.stats.stack_id < b.stack.stats.stack_id;
    };
    // Heap stacks in the report's own order (--sort, the `o` key).
    order_ = r.stack_order;
    if (order_ == StackOrder::Outstanding) std::stable_sort(heap.begin(), heap.end(), by_bytes);
    std::stable_sort(growth.begin(), growth.end(), by_bytes);
    if (order_ == StackOrder::Outstanding) std::stable_sort(python.begin(), python.end(), by_bytes);
    items_ = std::move(heap);
    items_.insert(items_.end(), growth.begin(), growth.end());
    items_.insert(items_.end(), python.begin(), python.end());
    if (items_.empty()) {
        cursor_ = 0;
        return;
    }
    if (at_) {
        auto it = std::find_if(items_.begin(), items_.end(), [&](const Item& i) { return i.key() == *at_; });
        if (it != items_.end()) {
            cursor_ = static_cast<int>(it - items_.begin());
            return;
        }
    }
    cursor_ = std::clamp(cursor_, 0, size() - 1);
    at_ = items_[cursor_].key();
}

void StackList::move(int delta) {
    if (items_.empty()) return;
    cursor_ = std::clamp(cursor_ + delta, 0, size() - 1);
    at_ = items_[cursor_].key();
}

void StackList::toggle() {
    if (items_.empty()) return;
    expand(!open_.count(items_[cursor_].key()));
}

void StackList::expand(bool open) {
    if (items_.empty()) return;
    if (open)
        open_.insert(items_[cursor_].key());
    else
        open_.erase(items_[cursor_].key());
}

std::vector<DetailLine> StackList::lines(bool heap_traced) const {
    std::vector<DetailLine> out;
    auto add_stacks = [&](Kind kind) {
        const bool growth = kind == Growth;
        bool any = false;
        for (size_t i = 0; i < items_.size(); i++) {
            const Item& it = items_[i];
            if (it.kind != kind) continue;
            any = true;
            const auto& s = it.stack;
            bool open = open_.count(it.key()) > 0;
            std::string text = std::string(open ? "[-] " : "[+] ") + human_bytes(s.stats.bytes);
            if (!growth) {
                char buf[128];
                snprintf(buf, sizeof buf, " in %" PRId64 " %s%s", s.stats.allocs,
                         kind == Python ? "object" : "allocation", s.stats.allocs == 1 ? "" : "s");
                text += buf;
                if (order_ != StackOrder::Outstanding) {
                    snprintf(buf, sizeof buf, "; %s in %" PRIu64 " in all, %" PRIu64 " temporary",
                             human_bytes(static_cast<int64_t>(s.stats.alloc_bytes_total)).c_str(), s.stats.allocs_total,
                             s.stats.temp_allocs);
                    text += buf;
                }
            }
            if (s.stats.stack_id == 0)
                text += "   (stack not stored: the stack map was full)";
            else if (!s.frames.empty())
                text += "   " + frame_text(s.frames[0]);
            if (s.truncated) text += "  [truncated]";
            out.push_back({DetailLine::Stack, text, static_cast<int>(i)});
            if (!open) continue;
            for (size_t f = 0; f < s.frames.size(); f++) {
                for (const auto& in : s.frames[f].inlined)
                    out.push_back({DetailLine::Frame, "        " + inlined_text(in), static_cast<int>(i)});
                char num[32];
                snprintf(num, sizeof num, "    #%-3zu ", f);
                out.push_back({DetailLine::Frame, num + frame_text(s.frames[f]), static_cast<int>(i)});
            }
        }
        return any;
    };
    out.push_back({DetailLine::Title, std::string("Heap stacks, by ") + stack_order_info(order_).ranks_by, -1});
    if (!add_stacks(Heap))
        out.push_back({DetailLine::Note,
                       heap_traced ? (order_ == StackOrder::Outstanding ? "    no outstanding heap allocations"
                                                                        : "    no heap allocations of this kind")
                                   : "    not heap-traced: press t to trace this process's allocations",
                       -1});
    out.push_back({DetailLine::Title, "Growth stacks, by resident bytes first touched (page faults)", -1});
    if (!add_stacks(Growth)) out.push_back({DetailLine::Note, "    no growth stacks yet", -1});
    // Python's object domain: apart from the heap (pymalloc's blocks are
    // not in its bytes), shown only for a process that has one.
    if (python_) {
        const auto& p = *python_;
        out.push_back({DetailLine::Title,
                       "Python objects (pymalloc, not in heap" + std::string(p.py_sampled ? "; ESTIMATES" : "") +
                           "): " + human_bytes(p.py_bytes) + " outstanding in " +
                           std::to_string(static_cast<int64_t>(p.py_allocs_total - p.py_frees_total)) +
                           " objects, peak " + human_bytes(p.py_peak_bytes) + "; stacks by " +
                           stack_order_info(order_).ranks_by,
                       -1});
        if (!add_stacks(Python)) out.push_back({DetailLine::Note, "    no Python object stacks", -1});
    }
    return out;
}

}  // namespace memtop::tui
