#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fixture_process.h"
#include "symbolize/symbolizer.h"

using memtop::AddressKind;
using memtop::find_mapping;
using memtop::Frame;
using memtop::Mapping;
using memtop::Symbolizer;
using memtop::test::FixtureProcess;
using memtop::test::Record;
using memtop::test::TempDir;

namespace {

struct Variant {
    const char* name;
    const char* exe;
    const char* lib;  // basename of the fixture library
    bool debug;       // line information available
};

// Paths come from tests/unit/symbolize/CMakeLists.txt.
const Variant kO0{"O0", FIXTURE_O0, "libfixture_O0.so", true};
const Variant kO2{"O2", FIXTURE_O2, "libfixture_O2.so", true};
const Variant kNoPie{"nopie", FIXTURE_nopie, "libfixture_nopie.so", true};
const Variant kSplit{"split", FIXTURE_split, "libfixture_split.so", true};
const Variant kNoDebug{"nodebug", FIXTURE_nodebug, "libfixture_nodebug.so", false};

std::string base(const std::optional<std::string>& path) {
    return path ? std::filesystem::path(*path).filename().string() : std::string("<null>");
}

std::string describe(const Frame& f) {
    std::string s = f.function.value_or("<null>") + " in " + f.module.value_or("<null>") + " at " +
                    f.file.value_or("<null>") + ":" + (f.line ? std::to_string(*f.line) : "<null>");
    for (const auto& in : f.inlined)
        s += " | inlined " + in.function.value_or("<null>") + " at " + in.file.value_or("<null>") + ":" +
             (in.line ? std::to_string(*in.line) : "<null>");
    return s;
}

// A frame for a call made on line `line` of `file` in `function`.
void check_call_site(const Frame& f, const Record& r, const std::string& function, const std::string& module_base,
                     const std::string& file, bool debug) {
    INFO(describe(f));
    CHECK(f.address == r.address);
    CHECK(f.function == function);
    CHECK(base(f.module) == module_base);
    REQUIRE(f.offset.has_value());
    CHECK(*f.offset > 0);
    CHECK(*f.offset < 0x1000);
    CHECK(f.inlined.empty());
    if (debug) {
        CHECK(base(f.file) == file);
        CHECK(f.line == r.line);
    } else {
        CHECK_FALSE(f.file.has_value());
        CHECK_FALSE(f.line.has_value());
    }
}

void check_fixture(const Variant& v, FixtureProcess& p, const std::vector<Mapping>& maps, Symbolizer& s) {
    const std::string exe = base(std::string(v.exe));
    const int pid = p.pid();
    check_call_site(s.resolve(pid, maps, p.at("main").address), p.at("main"), "main", exe, "fixture_main.cpp", v.debug);
    check_call_site(s.resolve(pid, maps, p.at("c_function").address), p.at("c_function"), "fixture_c_function", exe,
                    "fixture_main.cpp", v.debug);
    check_call_site(s.resolve(pid, maps, p.at("cxx_method").address), p.at("cxx_method"),
                    "fixture::Widget<int>::compute(int) const", exe, "fixture_main.cpp", v.debug);
    check_call_site(s.resolve(pid, maps, p.at("lib_function").address), p.at("lib_function"),
                    "fixture_lib::lib_function(int)", v.lib, "fixture_lib.cpp", v.debug);

    // The record call inside inlined_helper, inlined into fixture_inline_outer.
    {
        const Record& r = p.at("inlined");
        Frame f = s.resolve(pid, maps, r.address);
        INFO(describe(f));
        CHECK(f.function == "fixture_inline_outer");
        CHECK(base(f.module) == exe);
        if (v.debug) {
            CHECK(base(f.file) == "fixture_main.cpp");
            CHECK(f.line == r.line2);  // the call of inlined_helper
            REQUIRE(f.inlined.size() == 1);
            // Internal linkage: no linkage name, so scopes but no parameters.
            CHECK(f.inlined[0].function == "fixture::(anonymous namespace)::inlined_helper");
            CHECK(base(f.inlined[0].file) == "fixture_main.cpp");
            CHECK(f.inlined[0].line == r.line);  // the call inside inlined_helper
        } else {
            CHECK(f.inlined.empty());
            CHECK_FALSE(f.line.has_value());
        }
    }

    // A function's own address.
    {
        const Record& r = p.at("c_function_address");
        Frame exact = s.resolve(pid, maps, r.address, AddressKind::Exact);
        INFO(describe(exact));
        CHECK(exact.function == "fixture_c_function");
        CHECK(exact.offset == 0u);
        if (v.debug) {
            CHECK(base(exact.file) == "fixture_main.cpp");
            CHECK(exact.line == r.line);
        }
        // As a return address, address - 1 is looked up: one byte further on.
        Frame ret = s.resolve(pid, maps, r.address + 1);
        CHECK(ret.function == "fixture_c_function");
        CHECK(ret.offset == 1u);
        // The byte before the function belongs to something else.
        Frame before = s.resolve(pid, maps, r.address);
        CHECK(before.function != "fixture_c_function");
    }
}

}  // namespace

TEST_CASE("resolves call sites in the fixture program and library", "[symbolizer]") {
    const Variant& v =
        GENERATE(std::cref(kO0), std::cref(kO2), std::cref(kNoPie), std::cref(kSplit), std::cref(kNoDebug));
    SECTION(v.name) {
        FixtureProcess p(v.exe);
        std::vector<Mapping> maps = p.maps();
        Symbolizer s;
        check_fixture(v, p, maps, s);
        CHECK(s.cached_modules() == 2);  // the program and its library
    }
}

TEST_CASE("resolve_stack resolves every address in order", "[symbolizer]") {
    FixtureProcess p(kO0.exe);
    std::vector<Mapping> maps = p.maps();
    Symbolizer s;
    std::vector<uint64_t> stack = {p.at("c_function_address").address, p.at("lib_function").address,
                                   p.at("main").address, 0x10};
    std::vector<Frame> frames = s.resolve_stack(p.pid(), maps, stack, AddressKind::Exact);
    REQUIRE(frames.size() == 4);
    CHECK(frames[0].function == "fixture_c_function");
    CHECK(frames[0].offset == 0u);
    CHECK(frames[1].function == "fixture_lib::lib_function(int)");
    CHECK(frames[1].line == p.at("lib_function").line);
    CHECK(frames[2].function == "main");
    CHECK(frames[3].address == 0x10);
    CHECK_FALSE(frames[3].module.has_value());

    std::vector<Frame> returns = s.resolve_stack(p.pid(), maps, {p.at("main").address});
    REQUIRE(returns.size() == 1);
    CHECK(returns[0].line == p.at("main").line);
    CHECK(s.resolve_stack(p.pid(), maps, {}).empty());
}

TEST_CASE("a libc address is named from libc", "[symbolizer]") {
    FixtureProcess p(kO0.exe);
    Symbolizer s;
    Frame f = s.resolve(p.pid(), p.maps(), p.at("libc_caller").address);
    INFO(describe(f));
    CHECK(base(f.module) == "libc.so.6");
    CHECK(f.function.has_value());
}

TEST_CASE("addresses outside mapped files name no function", "[symbolizer]") {
    FixtureProcess p(kO0.exe);
    std::vector<Mapping> maps = p.maps();
    Symbolizer s;

    Frame none = s.resolve(p.pid(), maps, 0x10);
    CHECK(none.address == 0x10);
    CHECK_FALSE(none.module.has_value());
    CHECK_FALSE(none.function.has_value());

    for (const Mapping& m : maps) {
        if (m.path != "[stack]" && m.path != "[heap]" && m.path != "[vdso]") continue;
        Frame f = s.resolve(p.pid(), maps, m.start + 16);
        INFO(m.path);
        CHECK(f.address == m.start + 16);
        CHECK_FALSE(f.function.has_value());
        CHECK_FALSE(f.offset.has_value());
        CHECK_FALSE(f.file.has_value());
        CHECK_FALSE(f.line.has_value());
        if (m.path == "[vdso]")
            CHECK(f.module == "[vdso]");
        else
            CHECK_FALSE(f.module.has_value());
    }

    // An anonymous mapping built by hand.
    std::vector<Mapping> anon = {Mapping{0x10000, 0x20000, 0, 0, 0, "r-xp", "", false}};
    Frame a = s.resolve(p.pid(), anon, 0x10100);
    CHECK_FALSE(a.module.has_value());
    CHECK_FALSE(a.function.has_value());
    CHECK(s.cached_modules() == 0);
}

TEST_CASE("modules are cached by file, not by process", "[symbolizer]") {
    FixtureProcess a(kO0.exe);
    FixtureProcess b(kO0.exe);
    std::vector<Mapping> maps_a = a.maps();
    std::vector<Mapping> maps_b = b.maps();
    Symbolizer s;
    CHECK(s.resolve(a.pid(), maps_a, a.at("c_function").address).line == a.at("c_function").line);
    CHECK(s.cached_modules() == 1);
    CHECK(s.resolve(b.pid(), maps_b, b.at("c_function").address).line == b.at("c_function").line);
    CHECK(s.cached_modules() == 1);
    CHECK(s.resolve(a.pid(), maps_a, a.at("lib_function").address).function == "fixture_lib::lib_function(int)");
    CHECK(s.resolve(b.pid(), maps_b, b.at("lib_function").address).function == "fixture_lib::lib_function(int)");
    CHECK(s.cached_modules() == 2);

    // Cached modules keep serving a process after it exits.
    a.exit_and_wait();
    CHECK(s.resolve(a.pid(), maps_a, a.at("cxx_method").address).function ==
          "fixture::Widget<int>::compute(int) const");
}

TEST_CASE("a maps snapshot of an exited process still resolves", "[symbolizer]") {
    FixtureProcess p(kO0.exe);
    const int pid = p.pid();
    std::vector<Mapping> maps = p.maps();
    REQUIRE(p.exit_and_wait() == 0);
    REQUIRE(access(("/proc/" + std::to_string(pid) + "/maps").c_str(), F_OK) != 0);

    Symbolizer s;  // nothing cached: files are opened by path
    Frame f = s.resolve(pid, maps, p.at("cxx_method").address);
    INFO(describe(f));
    CHECK(f.function == "fixture::Widget<int>::compute(int) const");
    CHECK(f.line == p.at("cxx_method").line);
    Frame lib = s.resolve(pid, maps, p.at("lib_function").address);
    CHECK(lib.function == "fixture_lib::lib_function(int)");
    CHECK(lib.line == p.at("lib_function").line);
}

TEST_CASE("a deleted executable resolves while its process runs", "[symbolizer]") {
    TempDir dir;
    const std::string copy = dir.path() + "/fixture copy";
    std::filesystem::copy_file(kO0.exe, copy);
    FixtureProcess p(copy);
    REQUIRE(unlink(copy.c_str()) == 0);
    std::vector<Mapping> maps = p.maps();
    const Mapping* m = find_mapping(maps, p.at("c_function").address);
    REQUIRE(m != nullptr);
    CHECK(m->deleted);
    CHECK(m->path == copy);

    Symbolizer s;
    Frame f = s.resolve(p.pid(), maps, p.at("c_function").address);
    INFO(describe(f));
    CHECK(f.module == copy);
    CHECK(f.function == "fixture_c_function");
    CHECK(base(f.file) == "fixture_main.cpp");
    CHECK(f.line == p.at("c_function").line);
}

TEST_CASE("a file that cannot be opened gives the module only", "[symbolizer]") {
    SECTION("deleted executable of an exited process") {
        TempDir dir;
        const std::string copy = dir.path() + "/fixture";
        std::filesystem::copy_file(kO0.exe, copy);
        FixtureProcess p(copy);
        REQUIRE(unlink(copy.c_str()) == 0);
        std::vector<Mapping> maps = p.maps();
        p.exit_and_wait();
        Symbolizer s;
        Frame f = s.resolve(p.pid(), maps, p.at("c_function").address);
        CHECK(f.module == copy);
        CHECK_FALSE(f.function.has_value());
        CHECK_FALSE(f.offset.has_value());
        CHECK_FALSE(f.line.has_value());
        CHECK(s.cached_modules() == 0);
    }
    SECTION("path now names another file") {
        // The mapping says inode 1 on device 0:1; the path is a real ELF file.
        std::vector<Mapping> maps = {Mapping{0x400000, 0x500000, 0, 1, 1, "r-xp", kO0.exe, false}};
        Symbolizer s;
        Frame f = s.resolve(-1, maps, 0x401000);
        CHECK(f.module == kO0.exe);
        CHECK_FALSE(f.function.has_value());
        CHECK(s.cached_modules() == 0);
    }
    SECTION("not an ELF file") {
        TempDir dir;
        const std::string text = dir.path() + "/data.txt";
        std::ofstream(text) << std::string(8192, 'x');
        struct stat st {};
        REQUIRE(stat(text.c_str(), &st) == 0);
        std::vector<Mapping> maps = {Mapping{0x400000, 0x402000, 0, st.st_dev, st.st_ino, "r-xp", text, false}};
        Symbolizer s;
        Frame f = s.resolve(-1, maps, 0x401000);
        CHECK(f.module == text);
        CHECK_FALSE(f.function.has_value());
        CHECK(s.cached_modules() == 0);
    }
}

TEST_CASE("a moved-from symbolizer resolves nothing", "[symbolizer]") {
    Symbolizer a;
    Symbolizer b(std::move(a));
    Frame f = a.resolve(1, {}, 0x1234);  // NOLINT(bugprone-use-after-move)
    CHECK(f.address == 0x1234);
    CHECK(a.cached_modules() == 0);
    CHECK(b.cached_modules() == 0);
}

namespace {

// /proc/PID/status's value for `key` ("CapEff"), "" if absent.
std::string status_field(int pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        size_t v = line.find_first_not_of(" \t", key.size() + 1);
        return v == std::string::npos ? std::string() : line.substr(v);
    }
    return "";
}

// The file the worker is made to crash on (test seam, see symbolizer.h).
std::string g_crash_on;

// Not UBSan's to catch (it would report the null store and exit 1): the
// worker must die of the write itself, as it would of a parser's.
__attribute__((no_sanitize("undefined"))) void crash_on_file(const std::string& path) {
    if (!g_crash_on.empty() && path.size() >= g_crash_on.size() &&
        path.compare(path.size() - g_crash_on.size(), g_crash_on.size(), g_crash_on) == 0) {
        // What a parser bug does: a wild write.
        *static_cast<volatile int*>(nullptr) = 1;
    }
}

struct CrashOn {
    explicit CrashOn(const std::string& suffix) {
        g_crash_on = suffix;
        Symbolizer::set_worker_file_hook_for_tests(crash_on_file);
    }
    ~CrashOn() {
        Symbolizer::set_worker_file_hook_for_tests(nullptr);
        g_crash_on.clear();
    }
};

}  // namespace

TEST_CASE("files are parsed by a worker without capabilities, under a seccomp filter", "[symbolizer][privsep]") {
    FixtureProcess p(kO0.exe);
    Symbolizer s;
    CHECK(s.worker_pid() == 0);  // started when first needed
    CHECK(s.resolve(p.pid(), p.maps(), p.at("c_function").address).function == "fixture_c_function");
    const int worker = s.worker_pid();
    REQUIRE(worker > 0);
    CHECK(worker != getpid());
    CHECK(status_field(worker, "Name") == "memtop-symbols");
    CHECK(status_field(worker, "CapEff") == "0000000000000000");
    CHECK(status_field(worker, "CapPrm") == "0000000000000000");
    CHECK(status_field(worker, "CapInh") == "0000000000000000");
    CHECK(status_field(worker, "CapAmb") == "0000000000000000");
    CHECK(status_field(worker, "NoNewPrivs") == "1");
    CHECK(status_field(worker, "Seccomp") == "2");
    if (geteuid() == 0) {
        CHECK(status_field(worker, "CapBnd") == "0000000000000000");
        CHECK(status_field(worker, "Uid").rfind("65534\t65534\t65534", 0) == 0);
    }
    // Its only descriptors: stdin/out/err on /dev/null, its socket, and the
    // files it was handed (the program, its library via debug lookups...).
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(worker) + "/fd")) {
#ifdef MEMTOP_SANITIZER_BUILD
        if (e.path().filename() == "2") continue;  // the sanitizer build's worker keeps stderr (sandbox.cpp)
#endif
        const std::string target = std::filesystem::read_symlink(e.path()).string();
        INFO(target);
        CHECK((target == "/dev/null" || target.rfind("socket:", 0) == 0 || target == kO0.exe));
    }
}

TEST_CASE("a file that crashes the worker: its frames unnamed with the reason, every other frame exact",
          "[symbolizer][privsep]") {
    FixtureProcess p(kO0.exe);
    std::vector<Mapping> maps = p.maps();
    // Set before the worker is forked (it keeps the hook it was born with).
    CrashOn crash(kO0.lib);
    Symbolizer s;
    // Warm: the program is loaded by the first worker, which then dies.
    CHECK(s.resolve(p.pid(), maps, p.at("main").address).function == "main");
    const int first = s.worker_pid();
    REQUIRE(first > 0);
    (void)s.take_file_notes();

    std::vector<uint64_t> stack = {p.at("c_function").address, p.at("lib_function").address,
                                   p.at("cxx_method").address};
    std::vector<Frame> frames = s.resolve_stack(p.pid(), maps, stack);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0].function == "fixture_c_function");
    CHECK(frames[0].line == p.at("c_function").line);
    CHECK(base(frames[1].module) == kO0.lib);  // the module is known, nothing in it is named
    CHECK_FALSE(frames[1].function.has_value());
    CHECK_FALSE(frames[1].line.has_value());
    // Named by a new worker that loaded the program again.
    CHECK(frames[2].function == "fixture::Widget<int>::compute(int) const");
    CHECK(frames[2].line == p.at("cxx_method").line);
    CHECK(s.worker_pid() > 0);
    CHECK(s.worker_pid() != first);

    std::vector<memtop::SymbolFileNote> notes = s.take_file_notes();
    REQUIRE(notes.size() == 1);
    CHECK(base(notes[0].file) == kO0.lib);
    CHECK(notes[0].problem ==
          "not read: the symbolization worker was killed by signal 11 (Segmentation fault) while reading it");

    // The file is not handed to a worker again; the rest keeps working.
    const int second = s.worker_pid();
    CHECK_FALSE(s.resolve(p.pid(), maps, p.at("lib_function").address).function.has_value());
    CHECK(s.resolve(p.pid(), maps, p.at("main").address).function == "main");
    CHECK(s.worker_pid() == second);
    notes = s.take_file_notes();
    REQUIRE(notes.size() == 1);  // said again in the next report that meets it
    CHECK(base(notes[0].file) == kO0.lib);
}

TEST_CASE("a file memtop cannot open is named in the notes", "[symbolizer][privsep]") {
    // The mapping says inode 1 on device 0:1; the path names another file.
    std::vector<Mapping> maps = {Mapping{0x400000, 0x500000, 0, 1, 1, "r-xp", kO0.exe, false}};
    Symbolizer s;
    CHECK_FALSE(s.resolve(-1, maps, 0x401000).function.has_value());
    std::vector<memtop::SymbolFileNote> notes = s.take_file_notes();
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].file == kO0.exe);
    CHECK(notes[0].problem == "could not be opened (neither through /proc/PID/map_files nor by its path)");
}

namespace {

// The worker's test seams from the environment (docs/testing.md): a time
// limit of `limit_ms`, a hang before reading any file whose path ends with
// `suffix`. Read when a Symbolizer is made.
struct HangOn {
    HangOn(const std::string& suffix, int limit_ms) {
        setenv("MEMTOP_TEST_WORKER_HANG_ON", suffix.c_str(), 1);
        setenv("MEMTOP_TEST_WORKER_TIMEOUT_MS", std::to_string(limit_ms).c_str(), 1);
    }
    ~HangOn() {
        unsetenv("MEMTOP_TEST_WORKER_HANG_ON");
        unsetenv("MEMTOP_TEST_WORKER_TIMEOUT_MS");
        Symbolizer reset;  // forgets the hang for the Symbolizers made after
    }
};

}  // namespace

TEST_CASE("a file that hangs the worker: ended at the time limit, its frames unnamed with the reason",
          "[symbolizer][privsep]") {
    FixtureProcess p(kO0.exe);
    std::vector<Mapping> maps = p.maps();
    HangOn hang(kO0.lib, 1000);
    Symbolizer s;
    CHECK(s.resolve(p.pid(), maps, p.at("main").address).function == "main");
    const int first = s.worker_pid();
    REQUIRE(first > 0);
    (void)s.take_file_notes();

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Frame> frames = s.resolve_stack(
        p.pid(), maps, {p.at("c_function").address, p.at("lib_function").address, p.at("cxx_method").address});
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(waited >= 0.9);  // the limit, not a crash
    CHECK(waited < 30);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0].function == "fixture_c_function");
    CHECK(frames[0].line == p.at("c_function").line);
    CHECK(base(frames[1].module) == kO0.lib);  // the module is known, nothing in it is named
    CHECK_FALSE(frames[1].function.has_value());
    CHECK_FALSE(frames[1].line.has_value());
    CHECK(frames[2].function == "fixture::Widget<int>::compute(int) const");
    // The hung worker is gone (killed, reaped); a new one named the rest.
    CHECK(s.worker_pid() > 0);
    CHECK(s.worker_pid() != first);
    CHECK(kill(first, 0) != 0);

    std::vector<memtop::SymbolFileNote> notes = s.take_file_notes();
    REQUIRE(notes.size() == 1);
    CHECK(base(notes[0].file) == kO0.lib);
    CHECK(notes[0].problem == "not read: the symbolization worker did not answer within 1 s while reading it");

    // Not handed to a worker again: no second wait.
    const auto t1 = std::chrono::steady_clock::now();
    CHECK_FALSE(s.resolve(p.pid(), maps, p.at("lib_function").address).function.has_value());
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count() < 0.9);
    CHECK(s.resolve(p.pid(), maps, p.at("main").address).function == "main");
}

// An idle host's system view named frames in every file of every process
// once and kept them all loaded in the worker: a file no pass needed
// lately is unloaded, its names stay cached, a new address loads it again.
TEST_CASE("a file no naming pass needed lately is unloaded from the worker, its names kept", "[symbolizer]") {
    FixtureProcess p(kO0.exe);
    const std::vector<Mapping> maps = p.maps();
    Symbolizer s;
    const uint64_t c_function = p.at("c_function").address;
    CHECK(s.resolve(p.pid(), maps, c_function).line == p.at("c_function").line);
    CHECK(s.loaded_modules() == 1);
    const pid_t worker = s.worker_pid();

    s.release_idle(1);  // the pass that used it
    s.release_idle(1);  // one pass without it: kept
    CHECK(s.loaded_modules() == 1);
    s.release_idle(1);  // two: unloaded
    CHECK(s.loaded_modules() == 0);
    CHECK(s.cached_modules() == 1);
    CHECK(s.worker_pid() == worker);  // the same worker, which let it go

    // Named before: from the cache, nothing loaded.
    CHECK(s.resolve(p.pid(), maps, c_function).line == p.at("c_function").line);
    CHECK(s.loaded_modules() == 0);
    // A new address in it: loaded again, named as ever.
    CHECK(s.resolve(p.pid(), maps, p.at("cxx_method").address).function == "fixture::Widget<int>::compute(int) const");
    CHECK(s.loaded_modules() == 1);
}
