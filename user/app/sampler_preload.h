// `--sample N -- CMD`: memtop's in-process sampler (user/sampler/sampler.c)
// preloaded into CMD, so that an unsampled allocation takes no trap
// (docs/hot-path.md, "In-process sampling"). What this decides: where the
// library is, whether CMD can load it, and CMD's environment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attach/file_plan.h"

namespace memtop {

// The sampler (--sample) and the Python-only one (--python-objects -- CMD
// by default: CPython's object allocator only, no malloc of its own).
inline constexpr const char* kSamplerLibrary = "libmemtop_sampler.so";
inline constexpr const char* kPythonSamplerLibrary = "libmemtop_pysampler.so";

// `name` next to the memtop binary (a build tree), else where it is
// installed; "" when neither exists.
std::string find_sampler_library(const char* name = kSamplerLibrary);

// Why the loader of `exe` would not preload the library: "" when it would.
// A static program has no loader; a setuid or setgid one runs in secure
// mode, where LD_PRELOAD is ignored for libraries outside the system's.
// `symbols`: what memtop-cfi read of exe (null: not ELF, a script, whose
// interpreter is dynamically linked; or unreadable).
std::string preload_refused(const std::string& exe, const FileSymbols* symbols);

// memtop's environment for CMD, with `lib` first in LD_PRELOAD (in front of
// what LD_PRELOAD had: the sampler then wraps a preloaded allocator, whose
// malloc is the next one it forwards to) and MEMTOP_SAMPLE_BYTES=mean;
// python (--python-objects): MEMTOP_SAMPLE_PYTHON=1, CPython's object
// allocator sampled too (sampler.c, "CPython's object allocator").
std::vector<std::string> preload_environment(const std::string& lib, uint64_t mean, bool python);

// Why CPython started with `env` and `argv` would install allocators of its
// own over the sampler's hooks of its object allocator (the sampler checks
// the same environment): "" when it keeps them.
std::string python_hook_refused(const std::vector<std::string>& env, const std::vector<std::string>& argv);

}  // namespace memtop
