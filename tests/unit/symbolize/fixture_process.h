// Runs a symbolization fixture program and collects what it prints.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "procinfo/proc_maps.h"

namespace memtop::test {

struct Record {
    uint64_t address = 0;
    int line = 0;
    int line2 = 0;
};

class FixtureProcess {
public:
    // Starts `exe` and reads its records until "ready". Throws
    // std::runtime_error on failure.
    explicit FixtureProcess(const std::string& exe);
    ~FixtureProcess();
    FixtureProcess(const FixtureProcess&) = delete;
    FixtureProcess& operator=(const FixtureProcess&) = delete;

    pid_t pid() const { return pid_; }
    const Record& at(const std::string& label) const;  // throws if missing
    std::vector<Mapping> maps() const;                 // throws on failure
    // Closes the fixture's stdin and reaps it; returns its exit status.
    int exit_and_wait();
    // Closes the fixture's stdin and waits until it has exited, without
    // reaping it: it stays a zombie (its pid alive, its maps empty) until
    // exit_and_wait() or the destructor.
    void exit_leaving_zombie();

private:
    pid_t pid_ = -1;
    int stdin_ = -1;
    int stdout_ = -1;
    std::map<std::string, Record> records_;
};

// A private temporary directory, removed with its contents.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace memtop::test
