// The Python side of heap stacks: which traced processes are CPython (and
// of a version memtop knows), the Python frames the kernel stored per stack
// (bpf/python_frames.h), named while the process lives and kept by stack id,
// since a report may come after the process, or its code objects, are gone.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/frame.h"
#include "python/code_reader.h"
#include "python/layout.h"

namespace memtop {

// A stack's Python frames as stored: (code object, prev_instr), innermost first.
struct RawPyFrame {
    uint64_t code = 0, instr = 0;
    bool entry = false;  // the first frame of a call of the evaluation loop
};
struct RawPyStack {
    uint32_t pid = 0;
    std::vector<RawPyFrame> frames;
};

// A named Python frame: function nullopt when its code object could not be
// read (the process was gone).
struct PyFrame {
    std::optional<std::string> function;  // co_qualname
    std::optional<std::string> file;      // co_filename
    std::optional<int> line;
    bool entry = false;
    uint64_t code = 0;
};

class PythonFrames {
public:
    // read: a stack's frames from the kernel by id; all: every stored stack.
    using ReadOne = std::function<std::optional<RawPyStack>(uint64_t stack_id)>;
    using ReadAll = std::function<std::vector<std::pair<uint64_t, RawPyStack>>()>;
    PythonFrames(ReadOne read, ReadAll all) : read_(std::move(read)), all_(std::move(all)) {}

    // Process `pid` runs this CPython; returns the line to tell the user
    // (the version memtop does not know, or that Python frames are on).
    void add_process(int pid, const PythonTarget& t);
    bool is_python(uint32_t pid) const { return readers_.count(pid) > 0; }

    // The kernel stored the Python frames of stack_id: name them now.
    void stack_stored(uint32_t pid, uint64_t stack_id);
    // The process is about to exit: name every stack of it not named yet.
    void name_all(uint32_t pid);
    // A stack's named Python frames; null when it has none. Reads them
    // now if they were not named yet and the process lives.
    const std::vector<PyFrame>* frames(uint32_t pid, uint64_t stack_id);
    void forget(uint32_t pid);

    // The sampler's hooks of pid's object allocator were replaced by
    // CPython (bpf/pymalloc.h, MEMTOP_PY_MSG_HOOKS_LOST): said now on
    // stderr, and as a note of the next report (its figures incomplete).
    void hooks_lost(uint32_t pid);

    // What a report should say: processes whose Python frames could not be
    // named (gone first), versions memtop does not know. Each once.
    std::vector<std::string> take_notes();

private:
    std::vector<PyFrame> name(uint32_t pid, const RawPyStack& raw);

    ReadOne read_;
    ReadAll all_;
    std::map<uint32_t, std::unique_ptr<CodeReader>> readers_;
    std::map<uint64_t, std::pair<uint32_t, std::vector<PyFrame>>> named_;  // by stack id: (pid, frames)
    std::vector<std::string> notes_;
    std::set<uint32_t> unnamed_noted_;
};

// Replaces each native frame of CPython's evaluation loop
// (_PyEval_EvalFrameDefault) with the Python frames it ran: from the next
// Python frame up to and including the next entry frame, innermost first.
// Native frames above and below are kept. Python frames left over (the
// native walk stopped before their evaluation loop) follow the last one
// placed, or the innermost native frames when none matched.
std::vector<Frame> merge_python_frames(const std::vector<Frame>& native, const std::vector<PyFrame>& py);

// The function name of CPython's evaluation loop.
inline constexpr const char* kEvalFrameFunction = "_PyEval_EvalFrameDefault";

}  // namespace memtop
