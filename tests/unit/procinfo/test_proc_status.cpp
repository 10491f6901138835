#include <catch2/catch.hpp>

#include "procinfo/proc_status.h"

using memtop::parse_proc_status;

namespace {

// A user process (Linux 6.x), abridged after the memory lines.
constexpr const char* kUser =
    "Name:\tbash\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "Ngid:\t0\n"
    "Pid:\t4242\n"
    "PPid:\t4100\n"
    "TracerPid:\t0\n"
    "Uid:\t1000\t1000\t1000\t1000\n"
    "Gid:\t1000\t1000\t1000\t1000\n"
    "FDSize:\t256\n"
    "Groups:\t24 25 27 1000 \n"
    "NStgid:\t4242\n"
    "NSpid:\t4242\n"
    "NSpgid:\t4242\n"
    "NSsid:\t4100\n"
    "Kthread:\t0\n"
    "VmPeak:\t   12060 kB\n"
    "VmSize:\t   11996 kB\n"
    "VmLck:\t       0 kB\n"
    "VmPin:\t       0 kB\n"
    "VmHWM:\t    5432 kB\n"
    "VmRSS:\t    5120 kB\n"
    "RssAnon:\t    1800 kB\n"
    "RssFile:\t    3200 kB\n"
    "RssShmem:\t     120 kB\n"
    "VmData:\t    2204 kB\n"
    "VmStk:\t     132 kB\n"
    "VmExe:\t     892 kB\n"
    "VmLib:\t    1900 kB\n"
    "VmPTE:\t      60 kB\n"
    "VmSwap:\t      16 kB\n"
    "HugetlbPages:\t       0 kB\n"
    "CoreDumping:\t0\n"
    "THP_enabled:\t1\n"
    "Threads:\t1\n"
    "SigQ:\t0/63445\n"
    "Cpus_allowed_list:\t0-7\n"
    "voluntary_ctxt_switches:\t150\n"
    "nonvoluntary_ctxt_switches:\t3\n";

// A kernel thread: no Vm*/Rss* lines.
constexpr const char* kKthread =
    "Name:\tkworker/0:1H-kblockd\n"
    "Umask:\t0000\n"
    "State:\tI (idle)\n"
    "Tgid:\t98\n"
    "Ngid:\t0\n"
    "Pid:\t98\n"
    "PPid:\t2\n"
    "TracerPid:\t0\n"
    "Uid:\t0\t0\t0\t0\n"
    "Gid:\t0\t0\t0\t0\n"
    "FDSize:\t64\n"
    "Groups:\t \n"
    "NStgid:\t98\n"
    "NSpid:\t98\n"
    "NSpgid:\t0\n"
    "NSsid:\t0\n"
    "Kthread:\t1\n"
    "Threads:\t1\n"
    "SigQ:\t0/63445\n"
    "SigPnd:\t0000000000000000\n"
    "Cpus_allowed_list:\t0\n";

// PID 1 of a container's pid namespace, seen from the host; a thread of it
// (Pid != Tgid). No trailing newline.
constexpr const char* kNamespaced =
    "Name:\tnginx\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t1234\n"
    "Pid:\t1240\n"
    "PPid:\t1200\n"
    "NStgid:\t1234\t1\n"
    "NSpid:\t1234\t1\n"
    "NSpgid:\t1234\t1\n"
    "NSsid:\t1234\t1\n"
    "VmHWM:\t   10240 kB\n"
    "VmRSS:\t    8192 kB\n"
    "RssAnon:\t    4096 kB\n"
    "RssFile:\t    4096 kB\n"
    "RssShmem:\t       0 kB\n"
    "VmSwap:\t       0 kB\n"
    "Threads:\t2";

}  // namespace

TEST_CASE("parse_proc_status: user process", "[status]") {
    auto st = parse_proc_status(kUser);
    REQUIRE(st);
    CHECK(st->name == "bash");
    CHECK(st->tgid == 4242);
    CHECK(st->ppid == 4100);
    CHECK(st->nspid == std::vector<int>{4242});
    CHECK(st->uid == 1000);
    CHECK(st->gid == 1000);
    CHECK(st->vm_rss == 5120 * 1024);
    CHECK(st->vm_hwm == 5432 * 1024);
    CHECK(st->rss_anon == 1800 * 1024);
    CHECK(st->rss_file == 3200 * 1024);
    CHECK(st->rss_shmem == 120 * 1024);
    CHECK(st->vm_swap == 16 * 1024);
}

TEST_CASE("parse_proc_status: a size whose bytes overflow is refused", "[status]") {
    // Found by fuzz_proc_status (UBSan: signed overflow in kB * 1024).
    std::string base = "Name:\tx\nTgid:\t42\n";
    auto st = parse_proc_status(base + "VmHWM:\t 7552841608054672952 kB\n");
    CHECK_FALSE(st);
    // The largest size that fits in bytes still parses.
    st = parse_proc_status(base + "VmHWM:\t 9007199254740991 kB\n");
    REQUIRE(st);
    CHECK(st->vm_hwm == 9007199254740991LL * 1024);
}

// A setuid program run by a user: the real ids are the user's (whose loader
// memtop may run, attacher.cpp), not the effective ones.
TEST_CASE("parse_proc_status: the real user and group, not the effective ones", "[status]") {
    std::string text = kUser;
    auto set_line = [&](const std::string& key, const std::string& line) {
        size_t at = text.find(key);
        text.replace(at, text.find('\n', at) + 1 - at, line);
    };
    set_line("Uid:", "Uid:\t1000\t0\t0\t0\n");
    set_line("Gid:", "Gid:\t1001\t0\t0\t0\n");
    auto st = parse_proc_status(text);
    REQUIRE(st);
    CHECK(st->uid == 1000);
    CHECK(st->gid == 1001);
    CHECK_FALSE(parse_proc_status(std::string(kUser) + "Uid:\t-5\t0\t0\t0\n"));
}

TEST_CASE("parse_proc_status: kernel thread has no memory lines", "[status]") {
    auto st = parse_proc_status(kKthread);
    REQUIRE(st);
    CHECK(st->name == "kworker/0:1H-kblockd");
    CHECK(st->tgid == 98);
    CHECK(st->ppid == 2);
    CHECK(st->nspid == std::vector<int>{98});
    CHECK(st->vm_rss == 0);
    CHECK(st->vm_hwm == 0);
    CHECK(st->rss_anon == 0);
    CHECK(st->rss_file == 0);
    CHECK(st->rss_shmem == 0);
    CHECK(st->vm_swap == 0);
}

TEST_CASE("parse_proc_status: process in a pid namespace", "[status]") {
    auto st = parse_proc_status(kNamespaced);
    REQUIRE(st);
    CHECK(st->name == "nginx");
    CHECK(st->tgid == 1234);
    CHECK(st->nspid == std::vector<int>{1234, 1});
    CHECK(st->vm_rss == 8 << 20);
    CHECK(st->vm_hwm == 10 << 20);
}

TEST_CASE("parse_proc_status: nested namespaces and CRLF", "[status]") {
    auto st = parse_proc_status("Name:\tsh\r\nTgid:\t900\r\nNSpid:\t900\t45\t7\r\nVmRSS:\t  4 kB\r\n");
    REQUIRE(st);
    CHECK(st->nspid == std::vector<int>{900, 45, 7});
    CHECK(st->vm_rss == 4096);
}

TEST_CASE("parse_proc_status: names as the kernel escapes them", "[status]") {
    // Blanks, colons and tabs stay; '\n' is written "\n" and '\\' "\\".
    auto st = parse_proc_status("Name:\t my:prog\tx \nTgid:\t5\n");
    REQUIRE(st);
    CHECK(st->name == " my:prog\tx ");
    st = parse_proc_status("Name:\ta\\nb\\\\c\nTgid:\t5\n");
    REQUIRE(st);
    CHECK(st->name == "a\nb\\c");
    st = parse_proc_status("Name:\t\nTgid:\t5\n");
    REQUIRE(st);
    CHECK(st->name.empty());
}

TEST_CASE("parse_proc_status: older kernel without NSpid", "[status]") {
    auto st = parse_proc_status("Name:\tinit\nState:\tS (sleeping)\nTgid:\t1\nPid:\t1\nPPid:\t0\nVmRSS:\t 100 kB\n");
    REQUIRE(st);
    CHECK(st->nspid.empty());
    CHECK(st->vm_rss == 100 * 1024);
}

TEST_CASE("parse_proc_status: rejects what is not a status file", "[status]") {
    CHECK_FALSE(parse_proc_status(""));
    CHECK_FALSE(parse_proc_status("hello\nworld\n"));
    CHECK_FALSE(parse_proc_status("Name:\tx\n"));                           // no Tgid
    CHECK_FALSE(parse_proc_status("Tgid:\t1\n"));                           // no Name
    CHECK_FALSE(parse_proc_status("Name:\tx\nTgid:\tabc\n"));               // bad number
    CHECK_FALSE(parse_proc_status("Name:\tx\nTgid:\t1\nVmRSS:\t12\n"));     // no unit
    CHECK_FALSE(parse_proc_status("Name:\tx\nTgid:\t1\nVmRSS:\t12 MB\n"));  // wrong unit
    CHECK_FALSE(parse_proc_status("Name:\tx\nTgid:\t1\nNSpid:\t1\tz\n"));
}
