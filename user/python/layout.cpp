#include "python/layout.h"

#include <algorithm>
#include <regex>

namespace memtop {

namespace {

// CPython 3.11 on x86-64, from its headers (Include/internal/pycore_runtime.h,
// pycore_frame.h, cpython/pystate.h, cpython/code.h, cpython/unicodeobject.h
// of the 3.11 branch): offsetof() of each field, printed by a program built
// against Debian 12's python3.11-dev and checked against the layout Python's
// own structs give. The walk's fields: _PyRuntimeState.gilstate.tstate_current
// (576), PyThreadState.cframe (56) and .thread_id (152),
// _PyCFrame.current_frame (8), _PyInterpreterFrame.f_code (32), .previous
// (48), .prev_instr (56), .is_entry (68), .owner (69).
// 3.12 moved the current frame to PyThreadState.cframe->current_frame still,
// but the thread state to a thread-local and added C-stack shim frames; 3.13
// publishes _Py_DebugOffsets in _PyRuntime. Either needs its own row here,
// checked against that version's headers the same way.
const PythonLayout kLayouts[] = {
    [] {
        PythonLayout l;
        l.major = 3;
        l.minor = 11;
        l.runtime_tstate_current = 576;
        l.tstate_cframe = 56;
        l.tstate_thread_id = 152;
        l.cframe_current_frame = 8;
        l.frame_code = 32;
        l.frame_previous = 48;
        l.frame_prev_instr = 56;
        l.frame_is_entry = 68;
        l.frame_owner = 69;
        l.owner_skip = 0xff;  // 3.11 has no shim frames
        l.code_firstlineno = 72;
        l.code_filename = 112;
        l.code_name = 120;
        l.code_qualname = 128;
        l.code_linetable = 136;
        l.code_adaptive = 184;
        return l;
    }(),
};

// The address in the process of the byte at `offset` of the file a
// mapping maps, through that file's mappings.
std::optional<uint64_t> address_of(const std::vector<Mapping>& maps, const Mapping& file, uint64_t offset) {
    for (const auto& m : maps)
        if (m.dev == file.dev && m.ino == file.ino && offset >= m.pgoff && offset - m.pgoff < m.end - m.start)
            return m.start + (offset - m.pgoff);
    return std::nullopt;
}

}  // namespace

const PythonLayout* python_layout(int major, int minor) {
    for (const auto& l : kLayouts)
        if (l.major == major && l.minor == minor) return &l;
    return nullptr;
}

std::optional<std::pair<int, int>> python_version_of(const std::string& file_name) {
    static const std::regex re(R"(^(?:lib)?python(\d+)\.(\d+)[a-z]*(?:\.so.*|-.*)?$)");
    std::string base = file_name.substr(file_name.rfind('/') + 1);
    std::smatch m;
    if (!std::regex_match(base, m, re)) return std::nullopt;
    return std::make_pair(std::stoi(m[1]), std::stoi(m[2]));
}

std::optional<PythonTarget> find_python(const std::vector<Mapping>& maps, const std::string& root,
                                        const RuntimeOffset& runtime_offset) {
    std::vector<std::pair<uint64_t, uint64_t>> seen;
    for (const auto& m : maps) {
        if (!m.ino || m.path.empty() || m.path.find("python") == std::string::npos) continue;
        if (std::find(seen.begin(), seen.end(), std::make_pair(m.dev, m.ino)) != seen.end()) continue;
        seen.emplace_back(m.dev, m.ino);
        auto offset = runtime_offset(root + m.path, m);
        auto runtime = offset ? address_of(maps, m, *offset) : std::nullopt;
        if (!runtime) continue;
        PythonTarget t;
        t.module = m.path;
        t.runtime = *runtime;
        if (auto v = python_version_of(m.path)) {
            t.major = v->first;
            t.minor = v->second;
            t.layout = python_layout(t.major, t.minor);
        }
        return t;
    }
    return std::nullopt;
}

}  // namespace memtop
