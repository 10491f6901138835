// The memtop run protocols of the runtime tests: memtop started in its
// modes, waited for until it says it is tracing, stopped, and its NDJSON
// reports collected; and the attach protocol of tests/progs/common.h.
#include "protocol.h"

#include <cctype>
#include <memory>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "env.h"

namespace rt {

// ---------------------------------------------------------------- memtop

std::vector<std::string> memtop_base_args() {
    return {memtop_path(), "--json", "-d", "1", "-T", "1000"};
}

void collect_reports(const Child& memtop, Run& r) {
    for (const auto& l : memtop.out_lines) {
        if (l.empty() || l[0] != '{') continue;
        json j = json::parse(l, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;
        if (j.value("type", std::string()) != "report") continue;
        r.reports.push_back(j);
        if (j.value("final", false)) r.final_report = j;
    }
    r.err_lines = memtop.err_lines;
}

Run run_memtop_cmd(const std::vector<std::string>& cmd, const std::vector<std::string>& extra, Millis timeout) {
    Run r;
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("--");
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    Child m;
    std::string err;
    if (!spawn(m, argv, false, &err)) {
        r.diag = "cannot start memtop: " + err;
        return r;
    }
    if (!wait_exit({&m}, m, timeout)) {
        r.timed_out = true;
        m.signal(SIGKILL);
        wait_exit({&m}, m, 5s);
    }
    r.exit_code = m.exit_code();
    collect_reports(m, r);
    std::ostringstream cmdline;
    for (const auto& a : argv) cmdline << a << ' ';
    r.diag = cmdline.str() + "\n" + (r.timed_out ? "TIMED OUT\n" : "") + m.describe();
    return r;
}

// Does text contain n as a whole number (not part of a longer digit string)?
static bool names_number(const std::string& text, int n) {
    const std::string d = std::to_string(n);
    for (size_t p = text.find(d); p != std::string::npos; p = text.find(d, p + 1)) {
        bool left = p == 0 || !std::isdigit(static_cast<unsigned char>(text[p - 1]));
        size_t e = p + d.size();
        bool right = e == text.size() || !std::isdigit(static_cast<unsigned char>(text[e]));
        if (left && right) return true;
    }
    return false;
}

Attached run_attached(const std::vector<std::vector<std::string>>& progs, const AttachOptions& opt) {
    Attached a;
    std::vector<std::unique_ptr<Child>> cs;
    std::vector<Child*> all;
    for (const auto& argv : progs) {
        cs.push_back(std::make_unique<Child>());
        Child& c = *cs.back();
        std::string err;
        bool ok = spawn(c, argv, true, &err);
        INFO(err);
        REQUIRE(ok);
        all.push_back(&c);
    }
    for (auto& c : cs) {
        auto ready = wait_line(all, *c, false, [](const std::string& l) { return starts_with(l, "ready "); });
        INFO(c->describe());
        REQUIRE(ready);
        int pid = std::stoi(ready->substr(6));
        REQUIRE(pid == c->pid);
        a.pids.push_back(pid);
    }

    std::string pidlist;
    for (int pid : a.pids) pidlist += (pidlist.empty() ? "" : ",") + std::to_string(pid);
    std::vector<std::string> margv = memtop_base_args();
    margv.insert(margv.end(), {"-p", pidlist});
    if (opt.duration_sec > 0) margv.insert(margv.end(), {"--duration", std::to_string(opt.duration_sec)});
    Child mt;
    std::string err;
    bool started = spawn(mt, margv, false, &err);
    INFO(err);
    REQUIRE(started);
    all.push_back(&mt);
    {
        // "memtop: tracing ..." once all probes are attached.  memtop may also
        // print one such line per pid as it attaches: then wait until every
        // pid was named (a line naming none of them counts for all).
        std::set<int> pending(a.pids.begin(), a.pids.end());
        size_t from = 0;
        while (!pending.empty()) {
            auto tracing = wait_line(
                all, mt, true, [](const std::string& l) { return starts_with(l, "memtop: tracing"); }, kTimeout, &from);
            INFO(mt.describe());
            REQUIRE(tracing);
            std::set<int> named;
            for (int pid : pending)
                if (names_number(*tracing, pid)) named.insert(pid);
            if (named.empty()) pending.clear();
            for (int pid : named) pending.erase(pid);
        }
    }
    for (auto& c : cs) REQUIRE(c->write_stdin("go\n"));
    for (auto& c : cs) {
        auto done = wait_line(all, *c, false, [](const std::string& l) { return l == "done"; });
        INFO(c->describe());
        REQUIRE(done);
    }
    if (opt.duration_sec <= 0) REQUIRE(mt.signal(opt.stop_signal));
    bool exited = wait_exit(all, mt, kTimeout + std::chrono::seconds(opt.duration_sec));
    a.run.exit_code = mt.exit_code();
    a.run.timed_out = !exited;
    collect_reports(mt, a.run);
    std::ostringstream cmdline;
    for (const auto& x : margv) cmdline << x << ' ';
    a.run.diag = cmdline.str() + "\n" + mt.describe();
    {
        INFO(a.run.diag);
        REQUIRE(exited);
    }
    for (auto& c : cs) c->close_stdin();
    for (auto& c : cs) {
        bool ok = wait_exit(all, *c);
        INFO(c->describe());
        REQUIRE(ok);
        REQUIRE(c->exit_code() == 0);
    }
    return a;
}

std::optional<json> next_report(const std::vector<Child*>& all, Child& memtop, size_t& seen) {
    size_t from = seen;
    auto line = wait_line(
        all, memtop, false, [](const std::string& l) { return starts_with(l, "{"); }, kTimeout, &from);
    if (!line) return std::nullopt;
    seen = from;
    return json::parse(*line);
}

}  // namespace rt
