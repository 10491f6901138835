// A cgroup (v2) made for one test, for --cgroup and --container runs.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace rt {

inline std::string cgroup2_root() {
    std::ifstream in("/proc/self/mounts");
    std::string dev, dir, type, rest;
    while (in >> dev >> dir >> type && std::getline(in, rest))
        if (type == "cgroup2") return dir;
    return "";
}

// A cgroup made for one test, removed (once empty) at the end.
struct TestCgroup {
    std::string name, dir;
    explicit TestCgroup(const std::string& leaf) {
        const std::string root = cgroup2_root();
        REQUIRE(!root.empty());
        name = "memtop-test-" + std::to_string(getpid()) + "/" + leaf;
        dir = root + "/" + name;
        REQUIRE(system(("mkdir -p " + dir).c_str()) == 0);
    }
    ~TestCgroup() {
        rmdir(dir.c_str());
        rmdir(dir.substr(0, dir.rfind('/')).c_str());
    }
    // argv run inside the cgroup: the shell moves itself in, then execs.
    std::vector<std::string> run(const std::vector<std::string>& argv) const {
        std::string cmd = "echo $$ > " + dir + "/cgroup.procs && exec";
        for (const auto& a : argv) cmd += " '" + a + "'";
        return {"sh", "-c", cmd};
    }
};

}  // namespace rt
