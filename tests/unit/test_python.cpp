// Python frames in user space (user/python/): the 3.11 line-table decoder
// against the lines Debian's python3.11 reports for its own code objects,
// the version table, the merge into native stacks, and reading a live
// python3.11's code objects.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <sstream>
#include <string>

#include "attach/file_plan.h"
#include "procinfo/proc_maps.h"
#include "python/code_reader.h"
#include "python/layout.h"
#include "python/linetable.h"
#include "python/python_frames.h"
#include "util/errors.h"

using namespace memtop;

namespace {
const char* kPython = "/usr/bin/python3.11";

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
}

std::string unhex(const std::string& h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

// Code objects of every kind of location entry: short forms, one-line
// forms, long forms (multi-line expressions, columns past 127), line jumps
// back and forward, no-location entries (RESUME, exception tables), a
// 300-line gap. Per code object: firstlineno, co_linetable in hex, and the
// line of each code unit as co_positions() gives it ("-" for none).
const char* kFixture = R"PY(
import sys
src = '''
def f(a):
    x = [i for i in range(a)]
    if a > 3:
        y = {
          'k': a,
          'long': [a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a],
        }
    try:
        z = 1 / 0
    except ZeroDivisionError:
        pass
    while a:
        a -= 1
    return x
class C:
    def m(self):
        return [
            1,
            2,
        ]
def g():
''' + '\n' * 300 + '''    return 1
'''
mod = compile(src, 'fixture.py', 'exec')
def walk(co):
    yield co
    for c in co.co_consts:
        if hasattr(c, 'co_linetable'):
            yield from walk(c)
for co in walk(mod):
    lines = ['-' if p[0] is None else str(p[0]) for p in co.co_positions()]
    print(co.co_qualname, co.co_firstlineno, co.co_linetable.hex(), ','.join(lines))
)PY";
}  // namespace

TEST_CASE("python_version_of: interpreter and library file names", "[python]") {
    CHECK(python_version_of("/usr/bin/python3.11") == std::make_pair(3, 11));
    CHECK(python_version_of("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0") == std::make_pair(3, 11));
    CHECK(python_version_of("/root/.pyenv/versions/3.12.1/bin/python3.12") == std::make_pair(3, 12));
    CHECK(python_version_of("python3.13d") == std::make_pair(3, 13));
    CHECK_FALSE(python_version_of("/usr/bin/python3"));
    CHECK_FALSE(python_version_of("/usr/bin/pythonista"));
    CHECK(python_layout(3, 11) != nullptr);
    CHECK(python_layout(3, 99) == nullptr);
}

TEST_CASE("decode_linetable: every code unit's line as python3.11's co_positions() says", "[python]") {
    if (access(kPython, X_OK) != 0) {
        WARN("skipped: no " << kPython);
        return;
    }
    std::string fixture = "/tmp/memtop-linetable-" + std::to_string(getpid()) + ".py";
    {
        FILE* f = fopen(fixture.c_str(), "w");
        REQUIRE(f);
        fputs(kFixture, f);
        fclose(f);
    }
    std::string out = run(std::string(kPython) + " " + fixture);
    unlink(fixture.c_str());
    std::istringstream in(out);
    std::string qualname, table_hex, lines;
    int firstlineno = 0, objects = 0, units_checked = 0;
    bool saw_none = false, saw_long_jump = false;
    while (in >> qualname >> firstlineno >> table_hex >> lines) {
        objects++;
        auto ranges = decode_linetable(unhex(table_hex), firstlineno);
        std::vector<std::string> want;
        std::stringstream ls(lines);
        for (std::string l; std::getline(ls, l, ',');) want.push_back(l);
        for (size_t unit = 0; unit < want.size(); unit++) {
            auto got = line_of(ranges, static_cast<int>(unit));
            INFO(qualname << " unit " << unit);
            if (want[unit] == "-") {
                saw_none = true;
                CHECK_FALSE(got);
            } else {
                REQUIRE(got);
                CHECK(*got == std::stoi(want[unit]));
                saw_long_jump = saw_long_jump || *got > firstlineno + 250;
            }
            units_checked++;
        }
    }
    CHECK(objects >= 5);  // <module>, f, its comprehension, C, C.m, g
    CHECK(units_checked > 100);
    CHECK(saw_none);
    CHECK(saw_long_jump);
}

TEST_CASE("merge_python_frames: each evaluation loop frame gives way to the Python frames it ran", "[python]") {
    auto native = [](const char* fn) {
        Frame f;
        f.function = fn;
        return f;
    };
    auto py = [](const char* fn, int line, bool entry) {
        PyFrame p;
        p.function = fn;
        p.file = "/app/a.py";
        p.line = line;
        p.entry = entry;
        return p;
    };
    // C extension calling back into Python: two evaluation loops.
    std::vector<Frame> stack = {native("malloc_caller"), native(kEvalFrameFunction), native("PyObject_Call"),
                                native("ext_func"),      native(kEvalFrameFunction), native("PyEval_EvalCode"),
                                native("main")};
    std::vector<PyFrame> frames = {py("inner", 3, false), py("callback", 9, true), py("outer", 20, false),
                                   py("<module>", 30, true)};
    auto merged = merge_python_frames(stack, frames);
    std::vector<std::string> names;
    for (const auto& f : merged)
        names.push_back((f.kind == FrameKind::Python ? "py:" : "") + f.function.value_or("??"));
    CHECK(names == std::vector<std::string>{"malloc_caller", "py:inner", "py:callback", "PyObject_Call", "ext_func",
                                            "py:outer", "py:<module>", "PyEval_EvalCode", "main"});
    CHECK(merged[1].line == 3);
    CHECK(merged[1].file == "/app/a.py");

    // The native walk stopped before the outer loop: the rest follows the
    // last group placed.
    std::vector<Frame> cut = {native("malloc_caller"), native(kEvalFrameFunction), native("PyObject_Call")};
    merged = merge_python_frames(cut, frames);
    names.clear();
    for (const auto& f : merged) names.push_back(f.function.value_or("??"));
    CHECK(names ==
          std::vector<std::string>{"malloc_caller", "inner", "callback", "outer", "<module>", "PyObject_Call"});
    // No Python frames: the native stack as it was.
    CHECK(merge_python_frames(stack, {}).size() == stack.size());
}

TEST_CASE("find_python and CodeReader: a live python3.11's _PyRuntime and code objects", "[python]") {
    if (access(kPython, X_OK) != 0) {
        WARN("skipped: no " << kPython);
        return;
    }
    int to_child[2], from_child[2];
    REQUIRE(pipe(to_child) == 0);
    REQUIRE(pipe(from_child) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[1]);
        close(from_child[0]);
        const char* script =
            "import sys\n"
            "class Outer:\n"
            "    def método(self):\n"
            "        return 1\n"
            "print(id(Outer.método.__code__), flush=True)\n"
            "sys.stdin.read()\n";
        execl(kPython, kPython, "-c", script, (char*)nullptr);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    char buf[64] = {};
    ssize_t n = read(from_child[0], buf, sizeof buf - 1);
    REQUIRE(n > 0);
    uint64_t code = std::stoull(buf);
    auto maps = read_proc_maps(pid, nullptr);
    REQUIRE(maps);
    // _PyRuntime read in-process here (memtop asks memtop-cfi).
    auto runtime_offset = [](const std::string& path, const Mapping&) -> std::optional<uint64_t> {
        try {
            const FileSymbols s = read_file_symbols(path);
            auto vaddr = s.symbol("_PyRuntime");
            return vaddr ? s.file_offset(*vaddr) : std::nullopt;
        } catch (const MemtopError&) {
            return std::nullopt;
        }
    };
    auto t = find_python(*maps, "/proc/" + std::to_string(pid) + "/root", runtime_offset);
    REQUIRE(t);
    CHECK(t->module == kPython);
    CHECK(t->major == 3);
    CHECK(t->minor == 11);
    REQUIRE(t->layout);
    CHECK(t->runtime != 0);
    // _PyRuntime.gilstate.tstate_current: the main thread holds the GIL
    // while it blocks in read() (sys.stdin.read releases it: 0 is allowed).
    CodeReader reader(pid, *t->layout);
    const CodeInfo* c = reader.code(code);
    REQUIRE(c);
    CHECK(c->qualname == "Outer.método");
    CHECK(c->file == "<string>");
    CHECK(c->firstlineno == 3);
    REQUIRE(!c->lines.empty());
    // Its `return 1` is on line 4: some instruction of it says so.
    bool line4 = false;
    for (const auto& r : c->lines) line4 = line4 || r.line == 4;
    CHECK(line4);
    // Read again: the cached entry, still valid.
    CHECK(reader.code(code) == c);
    close(to_child[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    close(from_child[0]);
    // Gone: nothing to read, and the reader knows why.
    CHECK(reader.code(code + 16) == nullptr);
    CHECK(reader.gone());
}
