// SelfMeter: memtop's own cost, its helper processes' included.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "procinfo/processes.h"

using memtop::SelfMeter;

namespace {

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// A helper stand-in: touches `bytes` of memory and burns `cpu` seconds of
// CPU, says so on a pipe, then waits to be killed.
pid_t start_helper(size_t bytes, double cpu) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        std::vector<char> block(bytes);
        memset(block.data(), 1, block.size());
        volatile unsigned long spin = 0;
        while (process_cpu_seconds() < cpu) spin = spin + 1;
        char c = 'r';
        if (write(fds[1], &c, 1) != 1) _exit(1);
        for (;;) pause();
    }
    close(fds[1]);
    char c = 0;
    REQUIRE(read(fds[0], &c, 1) == 1);
    close(fds[0]);
    return pid;
}

}  // namespace

TEST_CASE("memtop's own cost counts its helpers' CPU and memory, and keeps an ended helper's CPU", "[self]") {
    SelfMeter meter;
    const auto alone = meter.sample();
    const pid_t helper = start_helper(64 << 20, 0.3);

    const auto with = meter.sample({helper, 0});
    // The helper's 0.3 s of CPU (clock ticks: 10 ms) and 64 MiB resident.
    CHECK(with.cpu_seconds >= alone.cpu_seconds + 0.29);
    CHECK(with.rss_bytes >= alone.rss_bytes + (64 << 20));
    // Anonymous memory (what it touched), not a file's pages.
    CHECK(with.rss_anon_bytes >= alone.rss_anon_bytes + (64 << 20));
    CHECK(with.rss_anon_bytes <= with.rss_bytes);

    kill(helper, SIGKILL);
    waitpid(helper, nullptr, 0);
    const auto after = meter.sample({helper});
    CHECK(after.cpu_seconds >= with.cpu_seconds);  // the ended helper's CPU stays counted
    CHECK(after.rss_bytes < with.rss_bytes - (32 << 20));
}

// The one reader of /proc/PID/stat (SelfMeter's CPU, the attacher's "has it
// exited?"): a command name holding ") " and spaces does not shift the
// fields; a zombie reads 'Z'; a pid that does not exist reads nothing.
TEST_CASE("read_proc_stat: state and CPU ticks after a command name with \") \"", "[self]") {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_NAME, "a) b c) d", 0, 0, 0);
        timespec ts{};
        do clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        while (ts.tv_sec < 1 && ts.tv_nsec < 300'000'000);  // 0.3 s of CPU
        char c = 'x';
        if (write(fds[1], &c, 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    close(fds[1]);
    char c = 0;
    REQUIRE(read(fds[0], &c, 1) == 1);
    close(fds[0]);
    auto running = memtop::read_proc_stat(pid);
    REQUIRE(running);
    CHECK((running->state == 'S' || running->state == 'R'));
    // 0.3 s of CPU at 100 ticks a second (the kernel's USER_HZ): 30 ticks at least, less than a second's.
    CHECK(running->cpu_ticks >= 28);
    CHECK(running->cpu_ticks < 100);
    kill(pid, SIGKILL);
    siginfo_t info{};
    REQUIRE(waitid(P_PID, pid, &info, WEXITED | WNOWAIT) == 0);  // a zombie until reaped
    auto zombie = memtop::read_proc_stat(pid);
    REQUIRE(zombie);
    CHECK(zombie->state == 'Z');
    REQUIRE(waitpid(pid, nullptr, 0) == pid);
    CHECK_FALSE(memtop::read_proc_stat(pid));
}
