#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "procinfo/proc_maps.h"
#include "symbolize/perf_map.h"
#include "symbolize/symbolizer.h"

using memtop::AddressKind;
using memtop::Frame;
using memtop::parse_perf_map;
using memtop::PerfMap;
using memtop::PerfMapEntry;
using memtop::Symbolizer;

namespace {

std::string name_at(const PerfMap& m, uint64_t addr) {
    auto hit = m.find(addr);
    return hit ? *hit->name : std::string("<none>");
}

uint64_t start_at(const PerfMap& m, uint64_t addr) {
    auto hit = m.find(addr);
    return hit ? hit->start : ~0ull;
}

}  // namespace

TEST_CASE("parse_perf_map reads what JITs write", "[perf_map]") {
    // Lines as node --perf-basic-prof, Python -X perf and perf-map-agent
    // write them: names with spaces, colons, parentheses.
    const char* text =
        "7f3a1c000000 40 jit_stub_alloc\n"
        "7f3a1c000040 1a0 LazyCompile:*fib /srv/app/fib.js:3:13\n"
        "0x7f3a1c001000 0x20 py::main:/srv/app/x.py\n"
        "7F3A1C002000 10 void Foo::bar(int, char const*) [clone .cold]\r\n"
        "7f3a1c003000\t8\tTab separated name\n"
        "7f3a1c004000 8 last line without newline";
    auto e = parse_perf_map(text);
    REQUIRE(e.size() == 6);
    CHECK(e[0].start == 0x7f3a1c000000);
    CHECK(e[0].size == 0x40);
    CHECK(e[0].name == "jit_stub_alloc");
    CHECK(e[1].start == 0x7f3a1c000040);
    CHECK(e[1].size == 0x1a0);
    CHECK(e[1].name == "LazyCompile:*fib /srv/app/fib.js:3:13");
    CHECK(e[2].start == 0x7f3a1c001000);
    CHECK(e[2].size == 0x20);
    CHECK(e[2].name == "py::main:/srv/app/x.py");
    CHECK(e[3].start == 0x7f3a1c002000);
    CHECK(e[3].name == "void Foo::bar(int, char const*) [clone .cold]");
    CHECK(e[4].size == 8);
    CHECK(e[4].name == "Tab separated name");
    CHECK(e[5].start == 0x7f3a1c004000);
    CHECK(e[5].name == "last line without newline");
}

TEST_CASE("parse_perf_map skips lines that do not parse", "[perf_map]") {
    const char* text =
        "\n"
        "garbage\n"
        "7f00 10\n"             // no name
        "7f00 10 \n"            // blank name
        "7f00 zz name\n"        // size not hex
        "7f00zz 10 name\n"      // start not a number
        "0x 10 name\n"          // "0x" alone
        "7f00 0 empty range\n"  // size 0: names nothing
        "ffffffffffffff00 200 wraps past 2^64\n"
        "1ffffffffffffffff 10 start over 64 bits\n"
        "0 40000001 larger than any JIT's code\n"
        "10000 ffffffffffe00000 nearly the whole address space\n"
        "# a comment\n"
        "1000 10 good\n";
    auto e = parse_perf_map(text);
    REQUIRE(e.size() == 1);
    CHECK(e[0].start == 0x1000);
    CHECK(e[0].size == 0x10);
    CHECK(e[0].name == "good");
    CHECK(parse_perf_map("").empty());
    // The largest entry kept.
    e = parse_perf_map("0 40000000 one GiB\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].size == memtop::kMaxPerfMapEntrySize);
}

TEST_CASE("parse_perf_map counts the lines it skips, by reason", "[perf_map]") {
    memtop::PerfMapLineCounts n;
    auto e = parse_perf_map(
        "\n"                                       // empty: not a line of the map at all
        "garbage\n"                                // malformed
        "7f00 10\n"                                // malformed: no name
        "7f00 0 empty range\n"                     // absurd: size 0
        "0 40000001 larger than any JIT's code\n"  // absurd: over 1 GiB
        "ffffffffffffff00 10 kernel space\n"       // absurd: past user space
        "1fffffffffff000 2000 ends past 2^57\n"    // absurd
        "1000 10 good\n"
        "2000 10 good too",
        &n);
    CHECK(e.size() == 2);
    CHECK(n.good == 2);
    CHECK(n.malformed == 2);
    CHECK(n.absurd == 4);
    // Counts add up over calls: a map read in pieces.
    parse_perf_map("x\n3000 10 third\n", &n);
    CHECK(n.good == 3);
    CHECK(n.malformed == 3);
}

TEST_CASE("PerfMap::add says which entries overlapped earlier ones", "[perf_map]") {
    PerfMap m;
    CHECK(m.add(parse_perf_map("1000 100 a\n1100 80 b\n2000 10 c\n")) == 0);  // adjacent is not overlapping
    CHECK(m.add(PerfMapEntry{0x10f0, 0x20, "across_a_b"}));
    CHECK(m.add(PerfMapEntry{0x1ff0, 0x20, "over_c"}));
    CHECK_FALSE(m.add(PerfMapEntry{0x5000, 0x10, "alone"}));
    CHECK(m.add(parse_perf_map("5000 10 again\n6000 10 new\n")) == 1);
}

TEST_CASE("PerfMap: an address is named by the entry holding it", "[perf_map]") {
    PerfMap m;
    m.add(parse_perf_map("1000 100 a\n1100 80 b\n2000 10 c\n"));
    CHECK(name_at(m, 0xfff) == "<none>");
    CHECK(name_at(m, 0x1000) == "a");
    CHECK(name_at(m, 0x10ff) == "a");
    CHECK(name_at(m, 0x1100) == "b");
    CHECK(name_at(m, 0x117f) == "b");
    CHECK(name_at(m, 0x1180) == "<none>");  // end is exclusive
    CHECK(name_at(m, 0x2008) == "c");
    CHECK(start_at(m, 0x2008) == 0x2000);
    CHECK(m.pieces() == 3);
}

TEST_CASE("PerfMap: where entries overlap the later one wins", "[perf_map]") {
    PerfMap m;
    // Code freed and regenerated: the later lines describe the memory now.
    m.add(
        parse_perf_map("1000 100 old_big\n"    // [1000,1100)
                       "1040 20 new_inside\n"  // [1040,1060): cuts old_big in two
                       "10f0 40 new_tail\n"    // [10f0,1130): overlaps old_big's end
                       "2000 10 gone\n"
                       "2000 10 same_range\n"  // the same range again: replaced
                       "3000 10 x\n"
                       "3010 10 y\n"
                       "2ff8 30 covers_x_y\n"));  // [2ff8,3028): covers x and y and more
    CHECK(name_at(m, 0x1000) == "old_big");
    CHECK(name_at(m, 0x103f) == "old_big");
    CHECK(name_at(m, 0x1040) == "new_inside");
    CHECK(name_at(m, 0x105f) == "new_inside");
    CHECK(name_at(m, 0x1060) == "old_big");
    CHECK(start_at(m, 0x1060) == 0x1000);  // offsets stay from the entry's own start
    CHECK(name_at(m, 0x10ef) == "old_big");
    CHECK(name_at(m, 0x10f0) == "new_tail");
    CHECK(name_at(m, 0x112f) == "new_tail");
    CHECK(name_at(m, 0x1130) == "<none>");
    CHECK(name_at(m, 0x2000) == "same_range");
    CHECK(name_at(m, 0x2ff8) == "covers_x_y");
    CHECK(name_at(m, 0x3000) == "covers_x_y");
    CHECK(name_at(m, 0x3018) == "covers_x_y");
    CHECK(name_at(m, 0x3028) == "<none>");
    // old_big (2 pieces), new_inside, new_tail, same_range, covers_x_y
    CHECK(m.pieces() == 6);
    m.clear();
    CHECK(name_at(m, 0x1000) == "<none>");
}

// The Symbolizer on this test process: anonymous executable memory named by
// /tmp/perf-PID.map, read again when it grows, kept once it is removed.
TEST_CASE("Symbolizer names anonymous executable memory from the perf map", "[perf_map][symbolizer]") {
    const int pid = getpid();
    const long page = sysconf(_SC_PAGESIZE);
    void* mem = mmap(nullptr, 2 * page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    const uint64_t code = reinterpret_cast<uint64_t>(mem);
    const std::string path = "/tmp/perf-" + std::to_string(pid) + ".map";
    struct Cleanup {
        std::string path;
        void* mem;
        long len;
        ~Cleanup() {
            unlink(path.c_str());
            munmap(mem, len);
        }
    } cleanup{path, mem, 2 * page};

    auto write_map = [&](const std::string& text, bool append) {
        FILE* f = std::fopen(path.c_str(), append ? "a" : "w");
        REQUIRE(f);
        std::fputs(text.c_str(), f);
        std::fclose(f);
    };
    char line[128];
    std::snprintf(line, sizeof line, "%llx 40 jit fn one\n", (unsigned long long)code);
    write_map(line, false);
    auto maps = memtop::read_proc_maps(pid, nullptr);
    REQUIRE(maps);
    const memtop::Mapping* m = memtop::find_mapping(*maps, code);
    REQUIRE(m);
    REQUIRE(m->ino == 0);

    Symbolizer s;
    const std::string label = "[perf-" + std::to_string(pid) + ".map]";
    // A return address 0x10 into the entry; looked up at 0x0f.
    Frame f = s.resolve(pid, *maps, code + 0x10);
    CHECK(f.function == "jit fn one");
    CHECK(f.module == label);
    CHECK(f.offset == 0x10);
    CHECK_FALSE(f.file.has_value());
    // An address past the entry: nothing names it.
    f = s.resolve(pid, *maps, code + 0x41);
    CHECK_FALSE(f.function.has_value());
    CHECK_FALSE(f.module.has_value());
    // A return address just past the entry's end belongs to its last call.
    f = s.resolve(pid, *maps, code + 0x40);
    CHECK(f.function == "jit fn one");

    // The JIT appends, including a half-written line: whole lines are read,
    // and the rest once it is complete.
    std::snprintf(line, sizeof line, "%llx 20 jit fn two\n%llx 10 jit fn th", (unsigned long long)(code + page),
                  (unsigned long long)(code + page + 0x100));
    write_map(line, true);
    std::vector<uint64_t> stack{code + page + 4, code + 8, code + page + 0x104};
    auto frames = s.resolve_stack(pid, *maps, stack, AddressKind::Exact);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0].function == "jit fn two");
    CHECK(frames[0].offset == 4);
    CHECK(frames[1].function == "jit fn one");
    CHECK_FALSE(frames[2].function.has_value());
    write_map("ree\n", true);
    s.refresh_perf_map(pid);
    CHECK(s.resolve(pid, *maps, code + page + 0x104).function == "jit fn three");
    CHECK(s.perf_map_pieces(pid) == 3);

    // A file (still) in use by the JIT is replaced by a shorter one: read anew.
    std::snprintf(line, sizeof line, "%llx 8 jit fn new\n", (unsigned long long)code);
    write_map(line, false);
    CHECK(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function == "jit fn new");
    CHECK_FALSE(s.resolve(pid, *maps, code + page + 4, AddressKind::Exact).function.has_value());

    // The JIT removes its map (at exit, say): what was read still names frames.
    unlink(path.c_str());
    CHECK(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function == "jit fn new");
    // ... until the process is forgotten.
    s.forget_process(pid);
    CHECK(s.perf_map_pieces(pid) == 0);
    CHECK_FALSE(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function.has_value());
}

TEST_CASE("Symbolizer ignores a perf map owned by another user", "[perf_map][symbolizer]") {
    if (geteuid() != 0) {
        WARN("skipped: needs root to give the file another owner");
        return;
    }
    const int pid = getpid();
    const long page = sysconf(_SC_PAGESIZE);
    void* mem = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    const uint64_t code = reinterpret_cast<uint64_t>(mem);
    const std::string path = "/tmp/perf-" + std::to_string(pid) + ".map";
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fprintf(f, "%llx 40 planted\n", (unsigned long long)code);
    std::fclose(f);
    REQUIRE(chown(path.c_str(), 65534, 65534) == 0);  // nobody: neither root nor this process's user
    auto maps = memtop::read_proc_maps(pid, nullptr);
    REQUIRE(maps);
    Symbolizer s;
    CHECK_FALSE(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function.has_value());
    REQUIRE(chown(path.c_str(), 0, 0) == 0);
    CHECK(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function == "planted");
    unlink(path.c_str());
    munmap(mem, page);
}

TEST_CASE("Symbolizer notes a perf map owned by another user as rejected", "[perf_map][symbolizer]") {
    if (geteuid() != 0) {
        WARN("skipped: needs root to give the file another owner");
        return;
    }
    const int pid = getpid();
    const std::string path = "/tmp/perf-" + std::to_string(pid) + ".map";
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fprintf(f, "1000 40 planted\n");
    std::fclose(f);
    REQUIRE(chown(path.c_str(), 65534, 65534) == 0);
    Symbolizer s;
    s.refresh_perf_map(pid);
    auto note = s.perf_map_note(pid);
    REQUIRE(note);
    CHECK(note->pid == uint32_t(pid));
    CHECK(note->file == path);
    CHECK(note->rejected == "owned by uid 65534, neither the process's user (uid 0) nor root");
    CHECK(note->lines_used == 0);
    unlink(path.c_str());
}

TEST_CASE("Symbolizer refuses a perf map that is a symlink", "[perf_map][symbolizer]") {
    // /tmp/perf-PID.map -> a root-owned file of secrets: the owner check
    // alone would accept it as root's. The target here is a root-owned (as
    // this test runs) file that parses as a perf map, so only the refusal to
    // follow the link keeps its name out of the frame.
    const int pid = getpid();
    const long page = sysconf(_SC_PAGESIZE);
    void* mem = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    const uint64_t code = reinterpret_cast<uint64_t>(mem);
    const std::string path = "/tmp/perf-" + std::to_string(pid) + ".map";
    const std::string secret = "/tmp/memtop-test-secret-" + std::to_string(pid);
    FILE* f = std::fopen(secret.c_str(), "w");
    REQUIRE(f);
    std::fprintf(f, "%llx 40 secret\n", (unsigned long long)code);
    std::fclose(f);
    unlink(path.c_str());
    REQUIRE(symlink(secret.c_str(), path.c_str()) == 0);
    auto maps = memtop::read_proc_maps(pid, nullptr);
    REQUIRE(maps);
    Symbolizer s;
    CHECK_FALSE(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function.has_value());
    auto note = s.perf_map_note(pid);
    REQUIRE(note);
    CHECK(note->rejected == "a symlink (not followed)");
    // The same file in place of the link is read: the link was the reason.
    unlink(path.c_str());
    REQUIRE(rename(secret.c_str(), path.c_str()) == 0);
    CHECK(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function == "secret");
    note = s.perf_map_note(pid);
    REQUIRE(note);
    CHECK(note->rejected.empty());
    CHECK(note->lines_used == 1);
    unlink(path.c_str());
    munmap(mem, page);
}

namespace {
// Writes `text` as this process's perf map, returns its path.
std::string write_own_perf_map(const std::string& text) {
    const std::string path = "/tmp/perf-" + std::to_string(getpid()) + ".map";
    unlink(path.c_str());
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
    std::fclose(f);
    return path;
}
}  // namespace

TEST_CASE("Symbolizer: no perf map, no note", "[perf_map][symbolizer]") {
    const int pid = getpid();
    unlink(("/tmp/perf-" + std::to_string(pid) + ".map").c_str());
    Symbolizer s;
    s.refresh_perf_map(pid);
    CHECK_FALSE(s.perf_map_note(pid));
}

TEST_CASE("Symbolizer rejects a perf map of random bytes and names nothing from it", "[perf_map][symbolizer]") {
    // Bytes with line ends among them, and one line that parses and would
    // name the code: the file as a whole is not a perf map, so not even that
    // line is used.
    const int pid = getpid();
    const long page = sysconf(_SC_PAGESIZE);
    void* mem = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    const uint64_t code = reinterpret_cast<uint64_t>(mem);
    char good[64];
    std::snprintf(good, sizeof good, "%llx 40 planted\n", (unsigned long long)code);
    std::string text = good;
    uint32_t x = 12345;
    for (int i = 0; i < 100000; ++i) {
        x = x * 1103515245u + 12345u;
        text += char(x >> 24);
    }
    text += "\n";
    const std::string path = write_own_perf_map(text);
    auto maps = memtop::read_proc_maps(pid, nullptr);
    REQUIRE(maps);
    Symbolizer s;
    CHECK_FALSE(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function.has_value());
    auto note = s.perf_map_note(pid);
    REQUIRE(note);
    CHECK(note->rejected.rfind("not a perf map: ", 0) == 0);
    CHECK(note->lines_used == 0);
    CHECK(note->lines_malformed >= 16);
    unlink(path.c_str());
    munmap(mem, page);
}

TEST_CASE("Symbolizer notes the lines of a perf map it skipped", "[perf_map][symbolizer]") {
    const int pid = getpid();
    const long page = sysconf(_SC_PAGESIZE);
    void* mem = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    const uint64_t code = reinterpret_cast<uint64_t>(mem);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "0 ffffffffffff covers everything\n"  // absurd: over 1 GiB
                  "%llx 0 nothing\n"                    // absurd: size 0
                  "%llx 40 first\n"
                  "%llx 40 second\n"  // overlaps first: names the code now
                  "a line the JIT garbled\n",
                  (unsigned long long)code, (unsigned long long)code, (unsigned long long)code + 0x20);
    const std::string path = write_own_perf_map(buf);
    auto maps = memtop::read_proc_maps(pid, nullptr);
    REQUIRE(maps);
    Symbolizer s;
    CHECK(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function == "first");
    CHECK(s.resolve(pid, *maps, code + 0x24, AddressKind::Exact).function == "second");
    auto note = s.perf_map_note(pid);
    REQUIRE(note);
    CHECK(note->rejected.empty());
    CHECK(note->lines_used == 2);
    CHECK(note->lines_absurd == 2);
    CHECK(note->lines_malformed == 1);
    CHECK(note->lines_overlapping == 1);
    CHECK(note->bytes_unread == 0);
    s.forget_process(pid);
    CHECK_FALSE(s.perf_map_note(pid));
    unlink(path.c_str());
    munmap(mem, page);
}

TEST_CASE("Symbolizer reads a perf map line longer than its read size as one malformed line",
          "[perf_map][symbolizer]") {
    const int pid = getpid();
    const long page = sysconf(_SC_PAGESIZE);
    void* mem = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    const uint64_t code = reinterpret_cast<uint64_t>(mem);
    char good[64];
    std::snprintf(good, sizeof good, "%llx 40 after_the_long_line\n", (unsigned long long)code);
    // 2.5 MiB without a line end, then a good line.
    const std::string path = write_own_perf_map("1000 10 " + std::string((5u << 19), 'x') + "\n" + good);
    auto maps = memtop::read_proc_maps(pid, nullptr);
    REQUIRE(maps);
    Symbolizer s;
    CHECK(s.resolve(pid, *maps, code + 4, AddressKind::Exact).function == "after_the_long_line");
    auto note = s.perf_map_note(pid);
    REQUIRE(note);
    CHECK(note->rejected.empty());
    CHECK(note->lines_malformed == 1);
    CHECK(note->lines_used == 1);
    unlink(path.c_str());
    munmap(mem, page);
}

TEST_CASE("Symbolizer notes a perf map that is not a regular file", "[perf_map][symbolizer]") {
    const int pid = getpid();
    const std::string path = "/tmp/perf-" + std::to_string(pid) + ".map";
    unlink(path.c_str());
    REQUIRE(mkfifo(path.c_str(), 0600) == 0);
    Symbolizer s;
    s.refresh_perf_map(pid);  // must not block on the FIFO
    auto note = s.perf_map_note(pid);
    REQUIRE(note);
    CHECK(note->rejected == "a FIFO, not a regular file");
    unlink(path.c_str());
}

namespace {

// Anonymous executable memory of this process named by its perf map, and
// the map's path.
struct OwnJitCode {
    long page = sysconf(_SC_PAGESIZE);
    void* mem = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t code = reinterpret_cast<uint64_t>(mem);
    std::string path;
    explicit OwnJitCode(const char* name) {
        REQUIRE(mem != MAP_FAILED);
        char line[128];
        std::snprintf(line, sizeof line, "%llx 40 %s\n", (unsigned long long)code, name);
        path = write_own_perf_map(line);
    }
    ~OwnJitCode() {
        unlink(path.c_str());
        munmap(mem, page);
    }
};

std::string g_crash_on_perf_map;
// no_sanitize: the worker dies of the write, not of UBSan's report of it.
__attribute__((no_sanitize("undefined"))) void crash_on_perf_map(const std::string& path) {
    if (path == g_crash_on_perf_map) *static_cast<volatile int*>(nullptr) = 1;  // a wild write
}

// Whether `s` still names a function of this test program from its ELF file.
bool named_from_elf(Symbolizer& s, const std::vector<memtop::Mapping>& maps) {
    Frame f = s.resolve(getpid(), maps, reinterpret_cast<uint64_t>(&crash_on_perf_map), AddressKind::Exact);
    return f.function && f.function->find("crash_on_perf_map") != std::string::npos;
}

}  // namespace

TEST_CASE("Symbolizer: the perf map is parsed by the worker, not by memtop", "[perf_map][symbolizer][privsep]") {
    OwnJitCode jit("jit fn");
    auto maps = memtop::read_proc_maps(getpid(), nullptr);
    REQUIRE(maps);
    Symbolizer s;
    CHECK(s.worker_pid() == 0);
    // No ELF file is involved: the worker is started for the map alone.
    CHECK(s.resolve(getpid(), *maps, jit.code + 4, AddressKind::Exact).function == "jit fn");
    CHECK(s.worker_pid() > 0);
}

TEST_CASE("Symbolizer: a perf map that crashes the worker is rejected with the reason, ELF files still named",
          "[perf_map][symbolizer][privsep]") {
    OwnJitCode jit("jit fn");
    auto maps = memtop::read_proc_maps(getpid(), nullptr);
    REQUIRE(maps);
    g_crash_on_perf_map = jit.path;
    Symbolizer::set_worker_file_hook_for_tests(crash_on_perf_map);  // before the worker is forked
    Symbolizer s;
    CHECK_FALSE(s.resolve(getpid(), *maps, jit.code + 4, AddressKind::Exact).function.has_value());
    Symbolizer::set_worker_file_hook_for_tests(nullptr);
    auto note = s.perf_map_note(getpid());
    REQUIRE(note);
    CHECK(note->rejected ==
          "not read: the symbolization worker was killed by signal 11 (Segmentation fault) while reading it");
    CHECK(note->lines_used == 0);
    // Not handed to a worker again, even as it grows; the rest still works.
    FILE* f = std::fopen(jit.path.c_str(), "a");
    REQUIRE(f);
    std::fputs("1000 10 more\n", f);
    std::fclose(f);
    CHECK_FALSE(s.resolve(getpid(), *maps, jit.code + 4, AddressKind::Exact).function.has_value());
    note = s.perf_map_note(getpid());
    REQUIRE(note);
    CHECK(note->rejected.rfind("not read: the symbolization worker was killed", 0) == 0);
    CHECK(named_from_elf(s, *maps));
}

TEST_CASE("Symbolizer: a perf map that hangs the worker is rejected at the time limit",
          "[perf_map][symbolizer][privsep]") {
    OwnJitCode jit("jit fn");
    auto maps = memtop::read_proc_maps(getpid(), nullptr);
    REQUIRE(maps);
    setenv("MEMTOP_TEST_WORKER_HANG_ON", jit.path.c_str(), 1);
    setenv("MEMTOP_TEST_WORKER_TIMEOUT_MS", "500", 1);
    Symbolizer s;
    unsetenv("MEMTOP_TEST_WORKER_HANG_ON");
    unsetenv("MEMTOP_TEST_WORKER_TIMEOUT_MS");
    CHECK_FALSE(s.resolve(getpid(), *maps, jit.code + 4, AddressKind::Exact).function.has_value());
    auto note = s.perf_map_note(getpid());
    REQUIRE(note);
    CHECK(note->rejected == "not read: the symbolization worker did not answer within 500 ms while reading it");
    CHECK(named_from_elf(s, *maps));
    Symbolizer reset;  // forgets the hang for the Symbolizers made after
}
