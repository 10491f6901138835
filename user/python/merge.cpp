#include "python/python_frames.h"

namespace memtop {

namespace {
Frame python_frame(const PyFrame& p) {
    Frame f;
    f.kind = FrameKind::Python;
    f.address = p.code;
    f.function = p.function;
    f.file = p.file;
    f.line = p.line;
    return f;
}
}  // namespace

std::vector<Frame> merge_python_frames(const std::vector<Frame>& native, const std::vector<PyFrame>& py) {
    std::vector<Frame> out;
    size_t next = 0;        // the next Python frame to place
    size_t after_last = 0;  // where leftovers go: after the last group placed
    auto place_group = [&] {
        while (next < py.size()) {
            const PyFrame& p = py[next++];
            out.push_back(python_frame(p));
            if (p.entry) break;
        }
        after_last = out.size();
    };
    for (const auto& f : native) {
        if (f.kind == FrameKind::Native && f.function && *f.function == kEvalFrameFunction && next < py.size()) {
            place_group();
            continue;
        }
        out.push_back(f);
    }
    if (next < py.size()) {
        std::vector<Frame> rest;
        for (size_t i = next; i < py.size(); i++) rest.push_back(python_frame(py[i]));
        out.insert(out.begin() + static_cast<std::ptrdiff_t>(after_last), rest.begin(), rest.end());
    }
    return out;
}

}  // namespace memtop
