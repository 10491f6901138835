// Environment and paths of the runtime tests: where memtop, the test programs
// and their sources are (paths compiled in by CMakeLists.txt), and whether
// this host can run the tests at all (root, BPF, uprobes, kernel version).
#include "env.h"

#include <sys/utsname.h>

#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

#include <catch2/catch.hpp>

// Compiled in by CMakeLists.txt.
#ifndef MEMTOP_PATH
#define MEMTOP_PATH ""
#endif
#ifndef MEMTOP_TEST_PROGS
#define MEMTOP_TEST_PROGS ""
#endif
#ifndef PROGS_SRC_DIR
#define PROGS_SRC_DIR ""
#endif

// vmtest/run-tests.sh finds these paths in this binary with `strings`, so
// each must be in it whole, after a NUL. A literal the compiler turns into
// immediate stores (as it may for a std::string made from it) is not, and
// its copy in the debug info follows a length byte that can be printable:
// this array keeps all three, each after a NUL.
[[gnu::used]] static const char kCompiledPaths[] = "\0" MEMTOP_PATH "\0" MEMTOP_TEST_PROGS "\0" PROGS_SRC_DIR;

namespace rt {

// ---------------------------------------------------------------- paths

std::string memtop_path() {
    if (const char* e = std::getenv("MEMTOP_BIN"); e && *e) return e;
    return MEMTOP_PATH;
}

static const std::map<std::string, std::string>& prog_map() {
    static const std::map<std::string, std::string> m = [] {
        std::map<std::string, std::string> r;
        std::string s = MEMTOP_TEST_PROGS;
        size_t pos = 0;
        while (pos <= s.size()) {
            size_t end = s.find('|', pos);
            if (end == std::string::npos) end = s.size();
            std::string item = s.substr(pos, end - pos);
            size_t eq = item.find('=');
            if (eq != std::string::npos) r[item.substr(0, eq)] = item.substr(eq + 1);
            pos = end + 1;
        }
        return r;
    }();
    return m;
}

std::string prog_path(const std::string& target) {
    auto it = prog_map().find(target);
    return it == prog_map().end() ? std::string() : it->second;
}

std::string progs_src(const std::string& file) {
    return std::string(PROGS_SRC_DIR) + "/" + file;
}

bool kernel_at_least(int major, int minor) {
    struct utsname u;
    if (uname(&u) != 0) return false;
    int ma = 0, mi = 0;
    if (sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
    return ma > major || (ma == major && mi >= minor);
}

int marker_line(const std::string& file, const std::string& name) {
    std::ifstream in(progs_src(file));
    std::string line;
    const std::string want = "@line " + name;
    for (int n = 1; std::getline(in, line); n++) {
        size_t p = line.find(want);
        if (p == std::string::npos) continue;
        size_t after = p + want.size();
        if (after == line.size() || line[after] == ' ') return n;
    }
    return 0;
}

// ---------------------------------------------------------------- environment

bool ci_mode() {
    const char* ci = std::getenv("CI");
    return ci && std::strcmp(ci, "true") == 0;
}

static std::string bpf_problem() {
    // A trivial kprobe-type program ("r0 = 0; exit"): tracing BPF usable?
    struct bpf_insn insns[2];
    std::memset(insns, 0, sizeof insns);
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].dst_reg = BPF_REG_0;
    insns[0].imm = 0;
    insns[1].code = BPF_JMP | BPF_EXIT;
    static const char license[] = "GPL";
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_KPROBE;
    attr.insns = reinterpret_cast<uint64_t>(insns);
    attr.insn_cnt = 2;
    attr.license = reinterpret_cast<uint64_t>(license);
    int fd = int(syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
    if (fd < 0) return std::string("cannot load a BPF tracing program: ") + std::strerror(errno);
    close(fd);
    if (access("/sys/bus/event_source/devices/uprobe/type", R_OK) != 0)
        return "no uprobe perf event source (/sys/bus/event_source/devices/uprobe)";
    return "";
}

static std::string env_problem() {
    if (geteuid() != 0) return "not running as root";
    std::string m = memtop_path();
    if (m.empty()) return "memtop binary unknown (not built with the memtop target; set MEMTOP_BIN)";
    if (access(m.c_str(), X_OK) != 0) return "memtop binary not executable: " + m;
    return bpf_problem();
}

bool env_ok() {
    static const std::string problem = env_problem();
    if (problem.empty()) return true;
    if (ci_mode())
        FAIL("runtime test environment unusable (CI=true): " << problem);
    else
        WARN("skipped: " << problem);
    return false;
}

bool have_prog(const std::string& target) {
    std::string p = prog_path(target);
    if (!p.empty() && access(p.c_str(), X_OK) == 0) return true;
    if (ci_mode())
        FAIL("test program " << target << " not built");
    else
        WARN("skipped: test program " << target << " not built");
    return false;
}

}  // namespace rt
