// Environment and paths of the runtime tests: where memtop, the test programs
// and their sources are (compiled in by CMakeLists.txt, or $MEMTOP_BIN), and
// whether this host can run the tests (root, BPF, uprobes, kernel version).
// Without a usable environment a test is skipped with a warning, or fails
// when CI=true.
#pragma once

#include <string>

namespace rt {

// ---------------------------------------------------------------- paths

// Path of the memtop binary: $MEMTOP_BIN, else the build-time path
// ($<TARGET_FILE:memtop>), else "".
std::string memtop_path();
// Path of a test program target (e.g. "c_sites_fp"), "" if it was not built.
std::string prog_path(const std::string& target);
// Path of a source file in tests/progs/.
std::string progs_src(const std::string& file);
// 1-based line of the "@line NAME" marker in tests/progs/<file>, 0 if none.
int marker_line(const std::string& file, const std::string& name);

// ---------------------------------------------------------------- environment

// Checks once whether the runtime tests can run (root, memtop present, BPF
// and uprobes usable).  If not: with CI=true records a FAIL, otherwise a WARN
// ("skipped: ...").  Returns false if the test must return early.
bool env_ok();
// CI=true: a missing requirement fails the test instead of skipping it.
bool ci_mode();
#define RT_REQUIRE_ENV()           \
    do {                           \
        if (!rt::env_ok()) return; \
    } while (0)
// Same for an optional test program target.
bool have_prog(const std::string& target);
// The running kernel is at least major.minor (uname).
bool kernel_at_least(int major, int minor);
// Kernels where memtop walks stacks with unwind tables and samples page
// faults (bpf_loop, bpf_find_vma: 5.17); older ones get frame pointers only.
inline bool kernel_has_unwinder() {
    return kernel_at_least(5, 17);
}

}  // namespace rt
