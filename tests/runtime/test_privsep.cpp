// Privilege separation: the files of traced processes (their ELF, DWARF)
// are parsed by a worker process of memtop (user/symbolize/sandbox.h) that
// holds no capabilities and runs under a seccomp filter. Checked on a real
// run, while memtop runs and has named a stack through the worker.
#include <dirent.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

// /proc/PID/status's value for `key`, "" if absent or the process is gone.
std::string status_field(int pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        size_t v = line.find_first_not_of(" \t", key.size() + 1);
        return v == std::string::npos ? std::string() : line.substr(v);
    }
    return "";
}

// The children of `parent` named `name`.
std::vector<int> children_named(int parent, const std::string& name) {
    std::vector<int> out;
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (struct dirent* e = readdir(d)) {
        const int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        if (status_field(pid, "PPid") == std::to_string(parent) && status_field(pid, "Name") == name)
            out.push_back(pid);
    }
    closedir(d);
    return out;
}

}  // namespace

TEST_CASE("While memtop runs, the process that parses files has no capabilities and a seccomp filter",
          "[bpf][privsep][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("jit_sites"));
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), {"--", prog_path("jit_sites"), "--wait"});
    Child memtop;
    start_memtop(memtop, argv, true);
    memtop.lines_on_stderr = true;  // with --json, CMD's stdout is memtop's stderr
    const int pid = wait_ready({&memtop}, memtop);
    size_t from_err = 0, from = 0;
    go({&memtop}, memtop, "done", &from_err);
    // A live report with a stack of pid holding a frame named from an ELF
    // file (not from the perf map): the worker has parsed a file. Which
    // stack depends on the kernel: the 5.10 build walks frame pointers only
    // and stops in the JIT code, but stdio's buffer is malloc'd from libc.
    auto live = wait_line(
        {&memtop}, memtop, false,
        [&](const std::string& l) {
            if (!starts_with(l, "{")) return false;
            json j = json::parse(l, nullptr, false);
            if (j.is_discarded() || !j.contains("stacks")) return false;
            for (const auto& st : j["stacks"]) {
                if (st.value("pid", 0) != pid) continue;
                for (const auto& f : st["frames"])
                    if (f.value("function", json()).is_string() && f.value("module", json()).is_string() &&
                        !starts_with(f["module"].get<std::string>(), "["))
                        return true;
            }
            return false;
        },
        kTimeout, &from);
    REQUIRE(live);
    const std::vector<int> workers = children_named(memtop.pid, "memtop-symbols");
    REQUIRE(workers.size() == 1);
    const int w = workers[0];
    INFO("worker " << w);
    CHECK(status_field(w, "CapEff") == "0000000000000000");
    CHECK(status_field(w, "CapPrm") == "0000000000000000");
    CHECK(status_field(w, "CapInh") == "0000000000000000");
    CHECK(status_field(w, "CapAmb") == "0000000000000000");
    CHECK(status_field(w, "NoNewPrivs") == "1");
    CHECK(status_field(w, "Seccomp") == "2");
    if (geteuid() == 0) {
        CHECK(status_field(w, "CapBnd") == "0000000000000000");
        CHECK(status_field(w, "Uid").rfind("65534\t65534\t65534", 0) == 0);
    }
    // memtop itself still holds its privileges (it loaded BPF programs).
    CHECK(status_field(memtop.pid, "CapEff") != "0000000000000000");
    memtop.close_stdin();
    Run r = stop_memtop({&memtop}, memtop, 0);
    INFO(r.diag);
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json* st = stack_with_bytes(*r.final_report, pid, JIT_SIZE);
    REQUIRE(st);
    CHECK((*st)["allocs"] == 1);
}
