#include "fixture_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace memtop::test {
namespace {

[[noreturn]] void fail(const std::string& what, int err) {
    throw std::runtime_error(what + ": " + std::system_category().message(err));
}

constexpr int kTimeoutMs = 5000;

}  // namespace

FixtureProcess::FixtureProcess(const std::string& exe) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) fail("pipe", errno);
    if (::pipe2(out, O_CLOEXEC) != 0) {
        int err = errno;
        ::close(in[0]);
        ::close(in[1]);
        fail("pipe", err);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    char* argv[] = {const_cast<char*>(exe.c_str()), nullptr};
    int rc = ::posix_spawn(&pid_, exe.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    if (rc != 0) {
        pid_ = -1;
        ::close(stdin_);
        ::close(stdout_);
        fail("spawn " + exe, rc);
    }

    std::string text;
    while (text.find("ready\n") == std::string::npos) {
        pollfd p{stdout_, POLLIN, 0};
        int n = ::poll(&p, 1, kTimeoutMs);
        if (n == 0) throw std::runtime_error("fixture " + exe + " timed out, output: " + text);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("poll", errno);
        }
        char buf[4096];
        ssize_t got = ::read(stdout_, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) fail("read fixture output", errno);
        if (got == 0) throw std::runtime_error("fixture " + exe + " exited early, output: " + text);
        text.append(buf, static_cast<size_t>(got));
    }
    std::istringstream lines(text);
    std::string label, address;
    Record r;
    while (lines >> label && label != "ready") {
        if (!(lines >> address >> r.line >> r.line2)) throw std::runtime_error("bad fixture output: " + text);
        r.address = std::strtoull(address.c_str(), nullptr, 16);
        records_[label] = r;
    }
}

FixtureProcess::~FixtureProcess() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        exit_and_wait();
    }
    if (stdout_ >= 0) ::close(stdout_);
}

const Record& FixtureProcess::at(const std::string& label) const {
    auto it = records_.find(label);
    if (it == records_.end()) throw std::runtime_error("fixture printed no " + label);
    return it->second;
}

std::vector<Mapping> FixtureProcess::maps() const {
    std::string error;
    auto maps = read_proc_maps(pid_, &error);
    if (!maps) throw std::runtime_error(error);
    return *maps;
}

void FixtureProcess::exit_leaving_zombie() {
    if (stdin_ >= 0) {
        ::close(stdin_);
        stdin_ = -1;
    }
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
}

int FixtureProcess::exit_and_wait() {
    if (stdin_ >= 0) {
        ::close(stdin_);
        stdin_ = -1;
    }
    int status = -1;
    if (pid_ > 0) {
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }
    return status;
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "memtop-symbolize-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) fail("mkdtemp " + tmpl, errno);
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

}  // namespace memtop::test
