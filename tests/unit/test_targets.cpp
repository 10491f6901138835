#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "attach/targets.h"
#include "util/errors.h"

using namespace memtop;

TEST_CASE("commands resolve through PATH as a shell does", "[targets]") {
    auto sh = resolve_command("sh");
    CHECK(sh.size() > 3);
    CHECK(sh.substr(sh.size() - 3) == "/sh");
    CHECK(resolve_command("/bin/sh") == "/bin/sh");
}

TEST_CASE("a missing command is 127, a non-executable one 126", "[targets]") {
    try {
        resolve_command("memtop-no-such-command-xyz");
        FAIL("expected an error");
    } catch (const MemtopError& e) {
        CHECK(e.exit_code() == kExitNotFound);
        CHECK(std::string(e.what()).find("memtop-no-such-command-xyz") != std::string::npos);
    }
    char tmpl[] = "/tmp/memtop-test-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    chmod(tmpl, 0644);
    try {
        resolve_command(tmpl);
        FAIL("expected an error");
    } catch (const MemtopError& e) {
        CHECK(e.exit_code() == kExitCannotRun);
    }
    unlink(tmpl);
}

TEST_CASE("the allocator files of a process are its libc and libstdc++", "[targets]") {
    AllocatorFinder finder(in_process_symbols());
    std::string err;
    auto maps = read_proc_maps(getpid(), &err);
    REQUIRE(maps);
    auto files = finder.files_of(getpid(), *maps);
    bool libc = false, libstdcxx = false;
    for (const auto& f : files) {
        if (f.path.find("libc.so.6") != std::string::npos) libc = true;
        if (f.path.find("libstdc++.so.6") != std::string::npos) libstdcxx = true;
        CHECK(f.path.find("libm.so") == std::string::npos);  // no allocator there
    }
    CHECK(libc);
    CHECK(libstdcxx);
}
