#include "python/python_frames.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <utility>

namespace memtop {

void PythonFrames::add_process(int pid, const PythonTarget& t) {
    if (!t.layout) {
        notes_.push_back("pid " + std::to_string(pid) + " runs " + t.module + " (CPython " +
                         (t.major ? std::to_string(t.major) + "." + std::to_string(t.minor) : "of unknown version") +
                         "), a version memtop has no layout for: its stacks show native frames only");
        return;
    }
    std::error_code ec;
    auto cwd = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
    readers_[static_cast<uint32_t>(pid)] = std::make_unique<CodeReader>(pid, *t.layout, ec ? "" : cwd.string());
}

std::vector<PyFrame> PythonFrames::name(uint32_t pid, const RawPyStack& raw) {
    std::vector<PyFrame> out;
    auto r = readers_.find(pid);
    for (const auto& f : raw.frames) {
        PyFrame p;
        p.entry = f.entry;
        p.code = f.code;
        if (r != readers_.end())
            if (const CodeInfo* c = r->second->code(f.code)) {
                p.function = c->qualname;
                p.file = c->file;
                p.line = r->second->line(*c, f.code, f.instr);
            }
        out.push_back(std::move(p));
    }
    return out;
}

void PythonFrames::stack_stored(uint32_t pid, uint64_t stack_id) {
    if (!readers_.count(pid)) return;
    auto it = named_.find(stack_id);
    if (it != named_.end() && it->second.first == pid) return;
    if (auto raw = read_(stack_id)) named_[stack_id] = {pid, name(pid, *raw)};
}

namespace {
size_t named_count(const std::vector<PyFrame>& frames) {
    size_t n = 0;
    for (const auto& f : frames) n += f.function.has_value();
    return n;
}
}  // namespace

void PythonFrames::name_all(uint32_t pid) {
    if (!readers_.count(pid)) return;
    // Also the stacks named before with a frame missing (its code object
    // could not be read then).
    for (auto& [id, raw] : all_()) {
        if (raw.pid != pid) continue;
        auto it = named_.find(id);
        if (it != named_.end() && named_count(it->second.second) == it->second.second.size()) continue;
        auto again = name(pid, raw);
        if (it == named_.end() || named_count(again) >= named_count(it->second.second))
            named_[id] = {pid, std::move(again)};
    }
}

const std::vector<PyFrame>* PythonFrames::frames(uint32_t pid, uint64_t stack_id) {
    auto it = named_.find(stack_id);
    bool complete = it != named_.end() && named_count(it->second.second) == it->second.second.size();
    if (!complete && readers_.count(pid)) {
        // Not named yet (its event is still on its way), or named while
        // some code object could not be read: try now.
        if (auto raw = read_(stack_id)) {
            auto again = name(pid, *raw);
            auto r = readers_.find(pid);
            bool unnamed = named_count(again) < again.size();
            if (unnamed && r->second->gone() && unnamed_noted_.insert(pid).second)
                notes_.push_back("pid " + std::to_string(pid) +
                                 ": some Python frames are unnamed: the process ended before memtop read their "
                                 "code objects");
            if (it == named_.end() || !unnamed)
                it = named_.insert_or_assign(stack_id, std::make_pair(pid, again)).first;
        }
    }
    return it == named_.end() ? nullptr : &it->second.second;
}

void PythonFrames::forget(uint32_t pid) {
    for (auto it = named_.begin(); it != named_.end();) it = it->second.first == pid ? named_.erase(it) : std::next(it);
    // An exec'd instance is forgotten after its pid may have been found to
    // run CPython again: the reader stays while the pid lives.
    if (kill(static_cast<int>(pid), 0) != 0 && errno == ESRCH) {
        readers_.erase(pid);
        unnamed_noted_.erase(pid);
    }
}

void PythonFrames::hooks_lost(uint32_t pid) {
    std::string why = "pid " + std::to_string(pid) +
                      ": CPython replaced memtop's sampler hooks of its object allocator with its own (-X dev's "
                      "debug hooks, PYTHONMALLOC, or a debug build): its Python objects were not counted, so its "
                      "Python-domain figures are incomplete, not zero";
    fprintf(stderr, "memtop: %s\n", why.c_str());
    notes_.push_back(why);
}

std::vector<std::string> PythonFrames::take_notes() {
    return std::exchange(notes_, {});
}

}  // namespace memtop
