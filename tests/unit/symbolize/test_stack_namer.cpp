// StackNamer: the maps a report's frames are named with, kept across the
// traced process's exit.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "fixture_process.h"
#include "model/report.h"
#include "symbolize/stack_namer.h"

using memtop::Report;
using memtop::ReportStack;
using memtop::StackNamer;
using memtop::test::FixtureProcess;

namespace {

// One heap stack of (pid, epoch) whose only frame is `address`.
Report report_of(int pid, uint32_t epoch, uint64_t address) {
    Report r;
    ReportStack s;
    s.stats.pid = static_cast<uint32_t>(pid);
    s.stats.epoch = epoch;
    s.ips = {address};
    r.stacks.push_back(s);
    return r;
}

std::string state_of(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() ? "" : line.substr(close + 2, 1);
}

}  // namespace

// -- CMD snapshots the maps at CMD's exit stop; the ring buffer may be read
// after that, while CMD is a zombie, and each late stack event asks for a
// fresh snapshot. A zombie's maps read empty: they must not replace the
// exit stop's.
TEST_CASE("a zombie's empty maps do not replace the snapshot of its exit", "[stack_namer]") {
    FixtureProcess p(FIXTURE_O0);
    const int pid = p.pid();
    const uint64_t address = p.at("cxx_method").address;
    StackNamer namer;
    namer.snapshot(static_cast<uint32_t>(pid), 7);

    p.exit_leaving_zombie();
    REQUIRE(state_of(pid) == "Z");
    namer.snapshot(static_cast<uint32_t>(pid), 7);      // the exit hook, read late
    namer.stack_stored(static_cast<uint32_t>(pid), 7);  // a late stack event

    Report r = report_of(pid, 7, address);
    namer.name(r);
    REQUIRE(r.stacks[0].frames.size() == 1);
    CHECK(r.stacks[0].frames[0].function == "fixture::Widget<int>::compute(int) const");

    // Once reaped and forgotten, nothing is kept.
    REQUIRE(p.exit_and_wait() == 0);
    namer.forget(static_cast<uint32_t>(pid), 7);
    Report gone = report_of(pid, 7, address);
    namer.name(gone);
    REQUIRE(gone.stacks[0].frames.size() == 1);
    CHECK_FALSE(gone.stacks[0].frames[0].function.has_value());
}

namespace {
// The report's note on /proc/PID/maps, or "" when it has none.
std::string maps_note(const Report& r, int pid) {
    for (const auto& n : r.symbol_files)
        if (n.file == "/proc/" + std::to_string(pid) + "/maps") return n.problem;
    return "";
}
}  // namespace

// Frames left unnamed because memtop had no maps of their process are said
// in the report, with why: never read, or read for another instance.
TEST_CASE("a stack named without maps says why in the report", "[stack_namer]") {
    FixtureProcess p(FIXTURE_O0);
    const int pid = p.pid();
    const uint64_t address = p.at("cxx_method").address;
    StackNamer namer;
    namer.snapshot(static_cast<uint32_t>(pid), 3);
    REQUIRE(p.exit_and_wait() == 0);

    Report named = report_of(pid, 3, address);
    namer.name(named);
    CHECK(maps_note(named, pid).empty());

    // Instance 4 of the same pid was never read.
    Report other = report_of(pid, 4, address);
    namer.name(other);
    REQUIRE(other.stacks[0].frames.size() == 1);
    CHECK_FALSE(other.stacks[0].frames[0].function.has_value());
    CHECK(maps_note(other, pid) == "not read for instance 4: it exec'd or ended; the maps kept are of instance 3");

    namer.forget(static_cast<uint32_t>(pid), 3);
    Report never = report_of(pid, 3, address);
    namer.name(never);
    CHECK(maps_note(never, pid) == "not read: the process ended before memtop read its maps");
    // Said in the report that met it, not again in the next.
    Report next;
    namer.name(next);
    CHECK(maps_note(next, pid).empty());

    // Many at once: eight named, the rest counted in one line.
    Report many;
    for (uint32_t e = 10; e < 30; e++) many.stacks.push_back(report_of(pid, e, address).stacks[0]);
    namer.name(many);
    REQUIRE(many.symbol_files.size() == 9);
    CHECK(many.symbol_files.back().file == "/proc/*/maps");
    CHECK(many.symbol_files.back().problem ==
          "not read for 12 more process instances: they ended before memtop read them");
}

// `-- WRAPPER` execs a short program: the exit stop reads the new image's
// maps (instance 8) before the ring buffer's older events are read. A late
// stack of the old image (instance 7), read while the process still lives,
// must not relabel those maps as instance 7's: the exec event then dropped
// them, and every frame of the program went unnamed (seen on Linux 5.10).
TEST_CASE("a late event of an earlier instance keeps the later instance's snapshot", "[stack_namer]") {
    FixtureProcess p(FIXTURE_O0);
    const int pid = p.pid();
    const uint64_t address = p.at("cxx_method").address;
    StackNamer namer;
    namer.snapshot(static_cast<uint32_t>(pid), 8);      // the exit stop of the new image
    namer.stack_stored(static_cast<uint32_t>(pid), 7);  // the old image's stack, read late
    CHECK(namer.maps_reads() == 1);
    namer.exec(static_cast<uint32_t>(pid), 7);      // the exec event behind it
    Report old_image = report_of(pid, 7, address);  // never named from the new image's maps
    namer.name(old_image);
    CHECK_FALSE(old_image.stacks[0].frames[0].function.has_value());
    CHECK(maps_note(old_image, pid) == "not read for instance 7: it exec'd or ended; the maps kept are of instance 8");
    // A mapping stack's epoch is its address space's id, no instance: named
    // from the snapshot kept, which stays instance 8's.
    Report mapped = report_of(pid, 1103902729, address);
    mapped.mappings = std::move(mapped.stacks);
    mapped.stacks.clear();
    namer.name(mapped);
    CHECK(mapped.mappings[0].frames[0].function == "fixture::Widget<int>::compute(int) const");
    CHECK(namer.maps_reads() == 1);
    REQUIRE(p.exit_and_wait() == 0);

    Report r = report_of(pid, 8, address);
    namer.name(r);
    REQUIRE(r.stacks[0].frames.size() == 1);
    CHECK(r.stacks[0].frames[0].function == "fixture::Widget<int>::compute(int) const");
}

// A growth or mapping stack (instance 0, keyed by pid) read after -- CMD's
// exit stop took its snapshot, while the process still lived: the fresh
// maps are the same image's, and the heap instance's stacks must still be
// named from them once the process is gone.
TEST_CASE("a snapshot for a pid's growth or mapping stacks keeps the heap instance it was taken for", "[stack_namer]") {
    FixtureProcess p(FIXTURE_O0);
    const int pid = p.pid();
    const uint64_t address = p.at("cxx_method").address;
    StackNamer namer;
    namer.snapshot(static_cast<uint32_t>(pid), 9);  // the exit stop
    namer.snapshot(static_cast<uint32_t>(pid), 0);  // a mapping stack's event, read late
    REQUIRE(p.exit_and_wait() == 0);

    Report r = report_of(pid, 9, address);
    namer.name(r);
    REQUIRE(r.stacks[0].frames.size() == 1);
    CHECK(r.stacks[0].frames[0].function == "fixture::Widget<int>::compute(int) const");
    CHECK(maps_note(r, pid).empty());
}

namespace {
// A stack reader for StackNamer::stack_stored.
std::function<const memtop::RawStack*()> reads(const memtop::RawStack& s) {
    return [&s] { return &s; };
}
}  // namespace

// A busy host stores new stacks all the time: the maps are read again only
// when a frame lies outside the snapshot kept (a library mapped since).
TEST_CASE("a new stack is checked against the maps kept, which are read again only for a frame outside them",
          "[stack_namer]") {
    const auto self = static_cast<uint32_t>(getpid());
    StackNamer namer;
    namer.snapshot(self, 5);
    REQUIRE(namer.maps_reads() == 1);

    // Inside the snapshot (this test's own code): no read, for the heap
    // instance and for a growth stack of the pid alike.
    memtop::RawStack inside;
    inside.ips = {reinterpret_cast<uint64_t>(&reads), reinterpret_cast<uint64_t>(&getpid)};
    namer.stack_stored(self, 5, reads(inside));
    namer.stack_stored(self, 0, reads(inside));
    CHECK(namer.maps_reads() == 1);

    // A file mapped executable after the snapshot: its frame is outside,
    // the maps are read at once, and the frame is named with the new file.
    const std::string file = "/usr/bin/true";
    int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    void* code = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    close(fd);
    REQUIRE(code != MAP_FAILED);
    memtop::RawStack loaded;
    loaded.ips = {reinterpret_cast<uint64_t>(code) + 0x10, reinterpret_cast<uint64_t>(&getpid)};
    const auto before_miss = std::chrono::steady_clock::now();
    namer.stack_stored(self, 5, reads(loaded));
    CHECK(namer.maps_reads() == 2);
    Report r = report_of(static_cast<int>(self), 5, loaded.ips[0]);
    namer.name(r);
    munmap(code, 4096);
    REQUIRE(r.stacks[0].frames.size() == 1);
    CHECK(r.stacks[0].frames[0].module == file);

    // A frame no mapping explains (garbage from a frame-pointer walk) reads
    // them again at most every 100 ms, not for every stack.
    memtop::RawStack garbage;
    garbage.ips = {0x10};
    namer.stack_stored(self, 5, reads(garbage));
    namer.stack_stored(self, 5, reads(garbage));
    namer.stack_stored(self, 5, reads(garbage));
    if (std::chrono::steady_clock::now() - before_miss < std::chrono::milliseconds(100))
        CHECK(namer.maps_reads() == 2);  // answered by the read for the miss above
    else
        CHECK(namer.maps_reads() <= 4);  // a slow host: one read per 100 ms at most

    // Another heap instance of the pid (an exec since): read, whatever its frames.
    const uint64_t reads_before = namer.maps_reads();
    namer.stack_stored(self, 6, reads(inside));
    CHECK(namer.maps_reads() == reads_before + 1);
}
