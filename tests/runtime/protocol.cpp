// The memtop run protocols of the runtime tests (see protocol.h): `--
// CMD`, the attach protocol `-p PID`, and the steps they are made of.
#include "protocol.h"

#include <cctype>
#include <memory>
#include <set>

#include <catch2/catch.hpp>

#include "env.h"

namespace rt {

// ---------------------------------------------------------------- memtop

std::vector<std::string> memtop_base_args() {
    return {memtop_path(), "--json", "-d", "1", "-T", "1000"};
}

std::vector<std::string> memtop_attach_args(const std::vector<int>& pids) {
    std::string pidlist;
    for (int pid : pids) pidlist += (pidlist.empty() ? "" : ",") + std::to_string(pid);
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), {"-p", pidlist});
    return argv;
}

// The Run of memtop (exited, or given up on: timed_out): its status, its
// output and the JSON reports in it (other lines ignored).
// A report line of memtop's NDJSON, or null.
static std::optional<json> report_line(const std::string& l) {
    if (l.empty() || l[0] != '{') return std::nullopt;
    json j = json::parse(l, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("type", std::string()) != "report") return std::nullopt;
    return j;
}

const std::vector<json>& Run::reports() const {
    if (!reports_) {
        reports_.emplace();
        for (const auto& l : out_lines)
            if (auto j = report_line(l)) reports_->push_back(std::move(*j));
    }
    return *reports_;
}

static Run run_of(const Child& memtop, bool timed_out) {
    Run r;
    r.pid = memtop.pid;
    r.exit_code = memtop.exit_code();
    r.timed_out = timed_out;
    r.out_lines = memtop.out_lines;
    r.err_lines = memtop.err_lines;
    r.diag = memtop.cmdline + "\n" + (timed_out ? "TIMED OUT\n" : "") + memtop.describe();
    // The final report is memtop's last report line: the last one parsed.
    for (auto it = r.out_lines.rbegin(); it != r.out_lines.rend(); ++it)
        if (auto j = report_line(*it)) {
            if (j->value("final", false)) r.final_report = std::move(*j);
            break;
        }
    return r;
}

void start_memtop(Child& memtop, const std::vector<std::string>& argv, bool pipe_stdin) {
    std::string err;
    bool started = spawn(memtop, argv, pipe_stdin, &err);
    INFO(err);
    REQUIRE(started);
}

Run run_memtop(const std::vector<std::string>& argv, Millis timeout) {
    Child m;
    start_memtop(m, argv);
    bool timed_out = false;
    if (!wait_exit({&m}, m, timeout)) {
        timed_out = true;
        m.signal(SIGKILL);
        wait_exit({&m}, m, 5s);
    }
    return run_of(m, timed_out);
}

const json* ended_report(const Run& r, const std::string& comm) {
    std::string want = comm.substr(0, 15);  // the kernel's comm
    for (auto it = r.reports().rbegin(); it != r.reports().rend(); ++it)
        for (const auto& p : it->value("processes", json::array()))
            if (p.value("comm", std::string()) == want && p.value("exited", false)) return &*it;
    return nullptr;
}

Run run_memtop_cmd(const std::vector<std::string>& cmd, const std::vector<std::string>& extra, Millis timeout) {
    std::vector<std::string> argv = memtop_base_args();
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("--");
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return run_memtop(argv, timeout);
}

std::string wait_memtop_ready(const std::vector<Child*>& all, Child& memtop, const std::string& prefix) {
    auto line = wait_line(all, memtop, true, [&](const std::string& l) { return starts_with(l, prefix); });
    INFO("waiting for \"" << prefix << "\" from " << memtop.describe());
    REQUIRE(line);
    return *line;
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

void wait_tracing(const std::vector<Child*>& all, Child& memtop, const std::vector<int>& pids) {
    std::set<int> pending(pids.begin(), pids.end());
    size_t from = 0;
    while (!pending.empty()) {
        auto tracing = wait_line(
            all, memtop, true, [](const std::string& l) { return starts_with(l, "memtop: tracing"); }, kTimeout, &from);
        INFO(memtop.describe());
        REQUIRE(tracing);
        std::set<int> named;
        for (int pid : pending)
            if (names_number(*tracing, pid)) named.insert(pid);
        if (named.empty()) pending.clear();
        for (int pid : named) pending.erase(pid);
    }
}

Run stop_memtop(const std::vector<Child*>& all, Child& memtop, int sig, Millis timeout) {
    if (sig != 0) {
        INFO(memtop.describe());
        REQUIRE(memtop.signal(sig));
    }
    bool exited = wait_exit(all, memtop, timeout);
    Run r = run_of(memtop, !exited);
    INFO(r.diag);
    REQUIRE(exited);
    return r;
}

std::optional<json> next_report(const std::vector<Child*>& all, Child& memtop, size_t& seen) {
    size_t from = seen;
    auto line = wait_line(
        all, memtop, false, [](const std::string& l) { return starts_with(l, "{"); }, kTimeout, &from);
    if (!line) return std::nullopt;
    seen = from;
    return json::parse(*line);
}

std::optional<json> report_until(const std::vector<Child*>& all, Child& memtop, size_t& seen,
                                 const std::function<bool(const json&)>& done, std::string* last, int max_reports) {
    for (int i = 0; i < max_reports; i++) {
        auto r = next_report(all, memtop, seen);
        if (!r) return std::nullopt;
        if (last) *last = r->dump();
        if (done(*r)) return r;
    }
    return std::nullopt;
}

std::optional<json> report_ended(const std::vector<Child*>& all, Child& memtop, size_t& seen, const std::string& comm,
                                 int& pid, std::string* last, int max_reports) {
    return report_until(
        all, memtop, seen,
        [&](const json& r) {
            for (const auto& p : r.value("processes", json::array()))
                if (p.value("comm", std::string()) == comm && p.value("exited", false)) pid = p["pid"].get<int>();
            return pid > 0;
        },
        last, max_reports);
}

// ---------------------------------------------------------------- the test programs

static void spawn_prog(Child& prog, const std::vector<std::string>& argv) {
    std::string err;
    bool ok = spawn(prog, argv, true, &err);
    INFO(err);
    REQUIRE(ok);
}

int wait_ready(const std::vector<Child*>& all, Child& c) {
    auto ready = wait_line(all, c, c.lines_on_stderr, [](const std::string& l) { return starts_with(l, "ready "); });
    INFO(c.describe());
    REQUIRE(ready);
    return std::stoi(ready->substr(6));
}

int start_prog(Child& prog, const std::vector<std::string>& argv, const std::vector<Child*>& others) {
    spawn_prog(prog, argv);
    std::vector<Child*> all = others;
    all.push_back(&prog);
    return wait_ready(all, prog);
}

void expect_line(const std::vector<Child*>& all, Child& c, const std::string& line, size_t* from) {
    auto seen = wait_line(
        all, c, c.lines_on_stderr, [&](const std::string& l) { return l == line; }, kTimeout, from);
    INFO("waiting for \"" << line << "\" from " << c.describe());
    REQUIRE(seen);
}

void tell(const std::vector<Child*>& all, Child& c, const std::string& line, const std::string& until, size_t* from) {
    INFO(c.describe());
    REQUIRE(c.write_stdin(line + "\n"));
    expect_line(all, c, until, from);
}

void go(const std::vector<Child*>& all, Child& c, const std::string& until, size_t* from) {
    tell(all, c, "go", until, from);
}

int end_prog(const std::vector<Child*>& all, Child& prog) {
    prog.close_stdin();
    bool exited = wait_exit(all, prog);
    INFO(prog.describe());
    REQUIRE(exited);
    return prog.exit_code();
}

// ---------------------------------------------------------------- attach protocol

Attached run_attached(const std::vector<std::vector<std::string>>& progs, const AttachOptions& opt) {
    Attached a;
    std::vector<std::unique_ptr<Child>> cs;
    std::vector<Child*> all;
    for (const auto& argv : progs) {
        cs.push_back(std::make_unique<Child>());
        spawn_prog(*cs.back(), argv);
        all.push_back(cs.back().get());
    }
    for (auto& c : cs) {
        int pid = wait_ready(all, *c);
        INFO(c->describe());
        REQUIRE(pid == c->pid);
        a.pids.push_back(pid);
    }
    if (opt.before_attach) opt.before_attach();

    std::vector<std::string> margv = memtop_attach_args(a.pids);
    if (opt.duration_sec > 0) margv.insert(margv.end(), {"--duration", std::to_string(opt.duration_sec)});
    Child mt;
    start_memtop(mt, margv);
    all.push_back(&mt);
    wait_tracing(all, mt, a.pids);

    for (auto& c : cs) REQUIRE(c->write_stdin("go\n"));
    for (auto& c : cs) expect_line(all, *c, "done");
    int sig = opt.stop_signal;
    if (opt.duration_sec > 0) sig = 0;  // --duration stops it
    if (opt.until_programs_exit) {
        for (auto& c : cs) c->close_stdin();  // their exit stops it
        sig = 0;
    }
    a.run = stop_memtop(all, mt, sig, kTimeout + std::chrono::seconds(opt.duration_sec));
    for (auto& c : cs) {
        int code = end_prog(all, *c);
        INFO(c->describe());
        REQUIRE(code == 0);
    }
    return a;
}

}  // namespace rt
