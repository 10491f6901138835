// The live screen's detail view without ncurses: one process's history of
// resident memory and heap (for its chart), and its stacks, each folded to
// one line or expanded frame by frame. Pure; tests/unit/tui/test_detail.cpp.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/report.h"
#include "views/format.h"
#include "views/tui/table.h"

namespace memtop::tui {

// One sample per report of every process's resident memory and heap; the
// last `capacity` are kept.
class History {
public:
    explicit History(size_t capacity = 120) : capacity_(capacity) {}
    // Processes not in `rows` are forgotten, except `keep` (a detail view
    // may still show a process that has exited).
    void record(const std::vector<Row>& rows, std::optional<uint32_t> keep = std::nullopt);
    std::vector<std::optional<int64_t>> rss(uint32_t pid) const;
    std::vector<std::optional<int64_t>> heap(uint32_t pid) const;
    size_t capacity() const { return capacity_; }

private:
    struct Sample {
        std::optional<int64_t> rss, heap;
    };
    size_t capacity_;
    std::map<uint32_t, std::deque<Sample>> samples_;
};

struct DetailLine {
    enum Kind { Title, Stack, Frame, Note } kind = Note;
    std::string text;
    int item = -1;  // the stack a Stack or Frame line belongs to
};

// A process's heap stacks (by outstanding bytes), growth stacks (resident
// bytes first touched, from page faults) and, under --python-objects, its
// Python-domain stacks (pymalloc's objects), with a cursor on one of them.
// Expanded stacks and the cursor stay on the same stacks across reports.
class StackList {
public:
    void update(const Report& r, uint32_t pid);
    int size() const { return static_cast<int>(items_.size()); }
    int cursor() const { return items_.empty() ? -1 : cursor_; }
    void move(int delta);
    void toggle();  // expand or fold the stack under the cursor
    void expand(bool open);
    // heap_traced: whether the process's heap is traced, for what to say
    // when it has no heap stacks.
    std::vector<DetailLine> lines(bool heap_traced) const;

private:
    enum Kind { Heap, Growth, Python };
    using Key = std::pair<Kind, uint64_t>;  // (list, stack id)
    struct Item {
        Kind kind = Heap;
        ReportStack stack;
        Key key() const { return {kind, stack.stats.stack_id}; }
    };
    std::vector<Item> items_;
    // The process's Python domain (--python-objects), when it has one: its
    // section's title says its totals.
    std::optional<ProcessStats> python_;
    StackOrder order_ = StackOrder::Outstanding;  // of the heap stacks, as the report chose them
    std::set<Key> open_;
    std::optional<Key> at_;  // under the cursor
    int cursor_ = 0;
};

}  // namespace memtop::tui
