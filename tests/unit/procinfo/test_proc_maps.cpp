#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "procinfo/proc_maps.h"

using memtop::find_mapping;
using memtop::Mapping;
using memtop::parse_proc_maps;
using memtop::read_proc_maps;

namespace {

// As the kernel prints it; the anonymous line has no trailing padding, the
// last line no newline.
constexpr const char* kMaps =
    "55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 1234567                    /usr/bin/foo\n"
    "55d0c0a01000-55d0c0a02000 r-xp 00001000 fd:01 1234567                    /usr/bin/foo\n"
    "55d0c1b9a000-55d0c1bbb000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f1e2c000000-7f1e2c021000 rw-p 00000000 00:00 0 \n"
    "7f1e2c021000-7f1e2c022000 ---p 00000000 00:00 0\n"
    "7f1e2d5e8000-7f1e2d5ea000 r-xp 00002000 103:05 98765                     /opt/my app/lib with  spaces.so "
    "(deleted)\n"
    "7f1e2d5ea000-7f1e2d5eb000 rw-s 00000000 00:01 4242                       /memfd:jit (deleted)\n"
    "7f1e2d5eb000-7f1e2d5ec000 r--p 00000000 fd:01 77                         /tmp/not (deleted) really\n"
    "7ffd1b7e4000-7ffd1b805000 rw-p 00000000 00:00 0                          [stack]\n"
    "7ffd1b9da000-7ffd1b9dc000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

}  // namespace

TEST_CASE("parse_proc_maps parses every kind of line", "[proc_maps]") {
    std::vector<Mapping> maps = parse_proc_maps(kMaps);
    REQUIRE(maps.size() == 11);

    const Mapping& text = maps[1];
    CHECK(text.start == 0x55d0c0a01000);
    CHECK(text.end == 0x55d0c0a02000);
    CHECK(text.pgoff == 0x1000);
    CHECK(text.dev == makedev(0xfd, 0x01));
    CHECK(text.ino == 1234567);
    CHECK(text.perms == "r-xp");
    CHECK(text.path == "/usr/bin/foo");
    CHECK_FALSE(text.deleted);

    CHECK(maps[2].path == "[heap]");
    CHECK(maps[2].ino == 0);
    CHECK(maps[3].path.empty());
    CHECK(maps[4].path.empty());
    CHECK(maps[4].perms == "---p");

    const Mapping& spaces = maps[5];
    CHECK(spaces.path == "/opt/my app/lib with  spaces.so");
    CHECK(spaces.deleted);
    CHECK(spaces.dev == makedev(0x103, 0x05));
    CHECK(spaces.pgoff == 0x2000);

    CHECK(maps[6].path == "/memfd:jit");
    CHECK(maps[6].deleted);
    CHECK(maps[6].perms == "rw-s");
    CHECK(maps[7].path == "/tmp/not (deleted) really");
    CHECK_FALSE(maps[7].deleted);
    CHECK(maps[8].path == "[stack]");
    CHECK(maps[9].path == "[vdso]");
    CHECK(maps[10].path == "[vsyscall]");
    CHECK(maps[10].start == 0xffffffffff600000);
}

TEST_CASE("parse_proc_maps skips lines that do not parse", "[proc_maps]") {
    CHECK(parse_proc_maps("").empty());
    CHECK(parse_proc_maps("\n\n").empty());
    auto maps = parse_proc_maps(
        "garbage\n"
        "1000-2000 r-xp 00000000 08:01\n"              // no inode
        "2000-1000 r-xp 00000000 08:01 5 /bad\n"       // end before start
        "1000-2000 r-xp 0000zz00 08:01 5 /bad\n"       // bad offset
        "3000-4000 r-xp 00000000 08:01 5 /good\r\n");  // CRLF tolerated
    REQUIRE(maps.size() == 1);
    CHECK(maps[0].path == "/good");
    CHECK(maps[0].dev == makedev(8, 1));
}

TEST_CASE("find_mapping finds the containing mapping", "[proc_maps]") {
    std::vector<Mapping> maps = parse_proc_maps(kMaps);
    CHECK(find_mapping(maps, 0x1000) == nullptr);
    CHECK(find_mapping(maps, 0x55d0c0a00000) == &maps[0]);
    CHECK(find_mapping(maps, 0x55d0c0a00fff) == &maps[0]);
    CHECK(find_mapping(maps, 0x55d0c0a01000) == &maps[1]);
    CHECK(find_mapping(maps, 0x55d0c0a02000) == nullptr);  // gap after text
    CHECK(find_mapping(maps, 0x7f1e2d5e9abc) == &maps[5]);
    CHECK(find_mapping(maps, 0xffffffffff600400) == &maps[10]);
    CHECK(find_mapping(maps, 0xffffffffffffffff) == nullptr);
    CHECK(find_mapping({}, 0x1000) == nullptr);
}

TEST_CASE("read_proc_maps reads a live process and names failures", "[proc_maps]") {
    std::string error;
    auto self = read_proc_maps(getpid(), &error);
    REQUIRE(self.has_value());
    CHECK(error.empty());
    // This function's code is in a file-backed executable mapping.
    const Mapping* m = find_mapping(*self, reinterpret_cast<uint64_t>(&parse_proc_maps));
    REQUIRE(m != nullptr);
    CHECK(m->perms[2] == 'x');
    CHECK(m->ino != 0);

    auto none = read_proc_maps(2147483647, &error);
    CHECK_FALSE(none.has_value());
    CHECK(error == "read /proc/2147483647/maps: No such file or directory");
    CHECK_FALSE(read_proc_maps(2147483647, nullptr).has_value());
}
