#include "record/diff_view.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "views/format.h"

namespace memtop {

namespace {

using ojson = nlohmann::ordered_json;

std::string signed_bytes(int64_t b) {
    return (b > 0 ? "+" : "") + human_bytes(b);
}

std::string signed_count(int64_t n) {
    return (n > 0 ? "+" : "") + std::to_string(n);
}

std::string base_name(const std::string& path) {
    return std::filesystem::path(path).filename().string();
}

// "function (module)  file:line", the inline chain above it: what matched.
std::string frame_lines(const std::vector<Frame>& frames) {
    std::string out;
    auto src = [](const std::optional<std::string>& file, std::optional<int> line) {
        return file ? "  " + base_name(*file) + (line ? ":" + std::to_string(*line) : "") : std::string();
    };
    for (const auto& f : frames) {
        for (const auto& i : f.inlined)
            out += "      " + i.function.value_or("??") + " (inlined)" + src(i.file, i.line) + "\n";
        std::string fn = f.function.value_or("??");
        if (!f.function && f.module && f.mapping) {
            char buf[32];
            snprintf(buf, sizeof buf, "+0x%" PRIx64, f.address - f.mapping->start + f.mapping->offset);
            fn = base_name(*f.module) + buf;
        }
        out += "      " + fn + " (" + (f.module ? base_name(*f.module) : "?") + ")" + src(f.file, f.line) + "\n";
    }
    return out;
}

ojson side_json(const DiffSide& s) {
    return {{"bytes", s.bytes},
            {"allocs", s.allocs},
            {"alloc_bytes_total", s.alloc_bytes_total},
            {"allocs_total", s.allocs_total}};
}

template <typename T>
ojson or_null(const std::optional<T>& v) {
    return v ? ojson(*v) : ojson(nullptr);
}

ojson frames_json(const std::vector<Frame>& frames) {
    ojson out = ojson::array();
    for (const auto& f : frames) {
        ojson inl = ojson::array();
        for (const auto& i : f.inlined)
            inl.push_back({{"function", or_null(i.function)}, {"file", or_null(i.file)}, {"line", or_null(i.line)}});
        char addr[24];
        snprintf(addr, sizeof addr, "0x%" PRIx64, f.address);
        out.push_back({{"address", addr},
                       {"function", or_null(f.function)},
                       {"offset", or_null(f.offset)},
                       {"module", or_null(f.module)},
                       {"file", or_null(f.file)},
                       {"line", or_null(f.line)},
                       {"inlined", std::move(inl)}});
    }
    return out;
}

DiffSide minus(const DiffSide& a, const DiffSide& b) {
    return {a.bytes - b.bytes, a.allocs - b.allocs, a.alloc_bytes_total - b.alloc_bytes_total,
            a.allocs_total - b.allocs_total};
}

std::string stack_lines(const std::vector<DiffStack>& stacks, const char* unit);

}  // namespace

std::string render_diff_text(const ReportDiff& d, const DiffSides& sides) {
    const DiffSide t = minus(d.now_total, d.base_total);
    std::string out = "memtop diff: " + sides.now + "\n        minus " + sides.base + "\n";
    char line[512];
    snprintf(line, sizeof line,
             "Outstanding heap: %s (%" PRId64
             " B) in %s allocations; allocated in all %s in %s.\n"
             "%zu stack%s changed outstanding, %zu only allocated and freed more, %zu unchanged "
             "(matched by function, module and file:line).\n",
             signed_bytes(t.bytes).c_str(), t.bytes, signed_count(t.allocs).c_str(),
             signed_bytes(t.alloc_bytes_total).c_str(), signed_count(t.allocs_total).c_str(), d.stacks.size(),
             d.stacks.size() == 1 ? "" : "s", d.churn.size(), d.unchanged);
    out += line;
    if (!d.stacks.empty()) out += "\nStacks by growth of outstanding bytes:\n";
    out += stack_lines(d.stacks, "allocation");
    if (!d.python) return out;
    // The Python domain: its own totals and stacks, never added to the heap's.
    const DiffSide pt = minus(d.python_now_total, d.python_base_total);
    snprintf(line, sizeof line,
             "\nPython domain (pymalloc, not in the heap): %s (%" PRId64
             " B) in %s objects; allocated in all %s in %s.\n"
             "%zu Python stack%s changed outstanding, %zu only allocated and freed more, %zu unchanged "
             "(each side's top stacks, the rest as one).\n",
             signed_bytes(pt.bytes).c_str(), pt.bytes, signed_count(pt.allocs).c_str(),
             signed_bytes(pt.alloc_bytes_total).c_str(), signed_count(pt.allocs_total).c_str(), d.python_stacks.size(),
             d.python_stacks.size() == 1 ? "" : "s", d.python_churn.size(), d.python_unchanged);
    out += line;
    if (!d.python_stacks.empty()) out += "\nPython stacks by growth of outstanding bytes:\n";
    out += stack_lines(d.python_stacks, "object");
    return out;
}

namespace {

std::string stack_lines(const std::vector<DiffStack>& stacks, const char* unit) {
    std::string out;
    char line[512];
    int rank = 1;
    for (const auto& s : stacks) {
        const DiffSide c = s.change();
        snprintf(line, sizeof line,
                 "#%d  %s (pid %u): %s outstanding (%" PRId64
                 " B, %s -> %s) in %s %s%s "
                 "(allocated %s in %s)\n",
                 rank++, s.comm.c_str(), s.pid, signed_bytes(c.bytes).c_str(), c.bytes,
                 human_bytes(s.base.bytes).c_str(), human_bytes(s.now.bytes).c_str(), signed_count(c.allocs).c_str(),
                 unit, c.allocs == 1 || c.allocs == -1 ? "" : "s", signed_bytes(c.alloc_bytes_total).c_str(),
                 signed_count(c.allocs_total).c_str());
        out += line;
        if (!s.stored) out += "      (stack not stored: the stack map was full)\n";
        out += frame_lines(s.frames);
    }
    return out;
}

}  // namespace

std::string render_diff_json(const ReportDiff& d, const DiffSides& sides) {
    auto stacks_of = [](const std::vector<DiffStack>& list) {
        ojson stacks = ojson::array();
        for (const auto& s : list) {
            ojson e = side_json(s.change());
            e["comm"] = s.comm;
            e["pid"] = s.pid;
            e["base"] = side_json(s.base);
            e["new"] = side_json(s.now);
            e["stored"] = s.stored;
            e["frames"] = frames_json(s.frames);
            stacks.push_back(std::move(e));
        }
        return stacks;
    };
    ojson stacks = stacks_of(d.stacks);
    ojson j = {{"diff", {{"new", sides.now}, {"base", sides.base}}},
               {"matched_by", "function, module, file:line and inline chain of every frame, and comm"},
               {"total", side_json(minus(d.now_total, d.base_total))},
               {"base_total", side_json(d.base_total)},
               {"new_total", side_json(d.now_total)},
               {"unchanged_stacks", d.unchanged},
               {"churn_stacks", d.churn.size()},
               {"stacks", std::move(stacks)}};
    // The Python domain, apart (docs/recording.md): only when a side has one.
    if (d.python)
        j["python"] = {{"total", side_json(minus(d.python_now_total, d.python_base_total))},
                       {"base_total", side_json(d.python_base_total)},
                       {"new_total", side_json(d.python_now_total)},
                       {"unchanged_stacks", d.python_unchanged},
                       {"churn_stacks", d.python_churn.size()},
                       {"stacks", stacks_of(d.python_stacks)}};
    return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

Report diff_as_report(const ReportDiff& d, const Report& now) {
    Report r;
    r.time = now.time;
    r.final = now.final;
    std::set<std::pair<uint32_t, uint32_t>> seen;
    uint64_t id = 1;
    auto add = [&](const std::vector<DiffStack>& changed, const std::vector<DiffStack>& churn,
                   std::vector<ReportStack>& into) {
        std::vector<const DiffStack*> all;
        for (const auto& s : changed) all.push_back(&s);
        for (const auto& s : churn) all.push_back(&s);
        for (const DiffStack* sp : all) {
            const DiffStack& s = *sp;
            if (seen.insert({s.pid, s.epoch}).second) {
                ProcessStats p;
                p.pid = s.pid, p.epoch = s.epoch, p.comm = s.comm;
                r.processes.push_back(p);
            }
            const DiffSide c = s.change();
            ReportStack rs;
            rs.stats.pid = s.pid, rs.stats.epoch = s.epoch;
            rs.stats.stack_id = s.stored ? id++ : 0;
            rs.stats.bytes = c.bytes;
            rs.stats.allocs = c.allocs;
            rs.stats.alloc_bytes_total = static_cast<uint64_t>(c.alloc_bytes_total);
            rs.stats.allocs_total = static_cast<uint64_t>(c.allocs_total);
            rs.frames = s.frames;
            into.push_back(std::move(rs));
        }
    };
    add(d.stacks, d.churn, r.all_stacks);
    // The Python domain's changes: the profile's python_* sample types.
    add(d.python_stacks, d.python_churn, r.all_python_stacks);
    return r;
}

}  // namespace memtop
