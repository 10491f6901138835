// Against the live /proc: this process, and a child in a new pid namespace.
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <climits>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "procinfo/identity.h"
#include "procinfo/proc_status.h"

extern char** environ;

using memtop::read_identity;
using memtop::read_proc_status;

namespace {

std::vector<std::string> list_dir(const std::string& path) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(path.c_str())) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') out.emplace_back(e->d_name);
        ::closedir(d);
    }
    return out;
}

bool all_digits(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// The children of `pid`: from /proc/PID/task/*/children (CONFIG_PROC_CHILDREN),
// else by the PPid of every process.
std::vector<int> children_of(int pid) {
    std::vector<int> out;
    std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    bool have_children_files = false;
    for (const auto& tid : list_dir(task_dir)) {
        std::ifstream f(task_dir + "/" + tid + "/children");
        if (!f) continue;
        have_children_files = true;
        int c;
        while (f >> c) out.push_back(c);
    }
    if (have_children_files) return out;
    for (const auto& name : list_dir("/proc")) {
        if (!all_digits(name)) continue;
        auto st = read_proc_status(std::stoi(name), nullptr);
        if (st && st->ppid == pid) out.push_back(st->tgid);
    }
    return out;
}

// `unshare --pid --fork --mount-proc --kill-child sleep 5`, killed and
// reaped when it goes out of scope. The child is killed directly: it may
// not have set up --kill-child's PR_SET_PDEATHSIG yet.
struct Unshare {
    pid_t pid = -1;
    pid_t child = 0;  // set once found
    Unshare() {
        const char* argv[] = {"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sleep", "5", nullptr};
        if (::posix_spawnp(&pid, "unshare", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) pid = -1;
    }
    ~Unshare() {
        if (pid > 0) {
            // unshare has not reaped it (it exits when it does), so `child` is
            // still this process.
            if (child > 0) ::kill(child, SIGKILL);
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    // True once unshare has exited (e.g. no privilege for a pid namespace).
    bool exited() {
        if (pid <= 0) return true;
        if (::waitpid(pid, nullptr, WNOHANG) == pid) {
            pid = -1;
            return true;
        }
        return false;
    }
};

}  // namespace

TEST_CASE("read_proc_status: this process", "[live]") {
    std::string error;
    auto st = read_proc_status(::getpid(), &error);
    REQUIRE(st);
    CHECK(error.empty());
    CHECK(st->tgid == ::getpid());
    CHECK(st->ppid == ::getppid());
    CHECK(st->vm_rss > 0);
    CHECK(st->vm_hwm >= st->vm_rss);
    CHECK(st->rss_anon + st->rss_file + st->rss_shmem == st->vm_rss);
    REQUIRE_FALSE(st->nspid.empty());
    CHECK(st->nspid[0] == ::getpid());
    CHECK(st->name == "unit_procinfo");
}

TEST_CASE("read_proc_status: a process that does not exist", "[live]") {
    std::string error;
    CHECK_FALSE(read_proc_status(INT_MAX, &error));
    CHECK(error == "read /proc/2147483647/status: No such file or directory");
    CHECK_FALSE(read_proc_status(INT_MAX, nullptr));
}

TEST_CASE("read_identity: this process and a missing one", "[live]") {
    auto id = read_identity(::getpid());
    CHECK(id.nspid == ::getpid());
    CHECK(id.cgroup.starts_with("/"));
    auto none = read_identity(INT_MAX);
    CHECK(none.cgroup.empty());
    CHECK_FALSE(none.container);
    CHECK(none.nspid == 0);
}

TEST_CASE("read_proc_status / read_identity: child in a new pid namespace", "[live][ns]") {
    Unshare u;
    REQUIRE(u.pid > 0);
    int& child = u.child;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < deadline) {
        if (u.exited()) break;
        if (auto c = children_of(u.pid); !c.empty()) {
            child = c.front();
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (child == 0) {
        WARN("unshare --pid --fork failed or gave no child (no privilege?): skipped");
        return;
    }
    std::string error;
    auto st = read_proc_status(child, &error);
    REQUIRE(st);
    CHECK(st->tgid == child);
    CHECK(st->ppid == u.pid);
    REQUIRE(st->nspid.size() >= 2);
    CHECK(st->nspid.front() == child);
    CHECK(st->nspid.back() == 1);
    auto id = read_identity(child);
    CHECK(id.nspid == 1);
    CHECK(id.cgroup == read_identity(::getpid()).cgroup);  // same cgroup as its grandparent
}
