#include "harness.h"

#include <sys/utsname.h>

#include <fcntl.h>
#include <linux/bpf.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#ifndef MEMTOP_PATH
#define MEMTOP_PATH ""
#endif
#ifndef MEMTOP_TEST_PROGS
#define MEMTOP_TEST_PROGS ""
#endif
#ifndef PROGS_SRC_DIR
#define PROGS_SRC_DIR ""
#endif

// vmtest/run-tests.sh finds these paths in this binary with `strings`, so
// each must be in it whole, after a NUL. A literal the compiler turns into
// immediate stores (as it may for a std::string made from it) is not, and
// its copy in the debug info follows a length byte that can be printable:
// this array keeps all three, each after a NUL.
[[gnu::used]] static const char kCompiledPaths[] = "\0" MEMTOP_PATH "\0" MEMTOP_TEST_PROGS "\0" PROGS_SRC_DIR;

namespace rt {

// ---------------------------------------------------------------- paths

std::string memtop_path() {
    if (const char* e = std::getenv("MEMTOP_BIN"); e && *e) return e;
    return MEMTOP_PATH;
}

static const std::map<std::string, std::string>& prog_map() {
    static const std::map<std::string, std::string> m = [] {
        std::map<std::string, std::string> r;
        std::string s = MEMTOP_TEST_PROGS;
        size_t pos = 0;
        while (pos <= s.size()) {
            size_t end = s.find('|', pos);
            if (end == std::string::npos) end = s.size();
            std::string item = s.substr(pos, end - pos);
            size_t eq = item.find('=');
            if (eq != std::string::npos) r[item.substr(0, eq)] = item.substr(eq + 1);
            pos = end + 1;
        }
        return r;
    }();
    return m;
}

std::string prog_path(const std::string& target) {
    auto it = prog_map().find(target);
    return it == prog_map().end() ? std::string() : it->second;
}

std::string progs_src(const std::string& file) {
    return std::string(PROGS_SRC_DIR) + "/" + file;
}

bool kernel_at_least(int major, int minor) {
    struct utsname u;
    if (uname(&u) != 0) return false;
    int ma = 0, mi = 0;
    if (sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
    return ma > major || (ma == major && mi >= minor);
}

int marker_line(const std::string& file, const std::string& name) {
    std::ifstream in(progs_src(file));
    std::string line;
    const std::string want = "@line " + name;
    for (int n = 1; std::getline(in, line); n++) {
        size_t p = line.find(want);
        if (p == std::string::npos) continue;
        size_t after = p + want.size();
        if (after == line.size() || line[after] == ' ') return n;
    }
    return 0;
}

// ---------------------------------------------------------------- environment

static bool ci_mode() {
    const char* ci = std::getenv("CI");
    return ci && std::strcmp(ci, "true") == 0;
}

static std::string bpf_problem() {
    // A trivial kprobe-type program ("r0 = 0; exit"): tracing BPF usable?
    struct bpf_insn insns[2];
    std::memset(insns, 0, sizeof insns);
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].dst_reg = BPF_REG_0;
    insns[0].imm = 0;
    insns[1].code = BPF_JMP | BPF_EXIT;
    static const char license[] = "GPL";
    union bpf_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_KPROBE;
    attr.insns = reinterpret_cast<uint64_t>(insns);
    attr.insn_cnt = 2;
    attr.license = reinterpret_cast<uint64_t>(license);
    int fd = int(syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
    if (fd < 0) return std::string("cannot load a BPF tracing program: ") + std::strerror(errno);
    close(fd);
    if (access("/sys/bus/event_source/devices/uprobe/type", R_OK) != 0)
        return "no uprobe perf event source (/sys/bus/event_source/devices/uprobe)";
    return "";
}

static std::string env_problem() {
    if (geteuid() != 0) return "not running as root";
    std::string m = memtop_path();
    if (m.empty()) return "memtop binary unknown (not built with the memtop target; set MEMTOP_BIN)";
    if (access(m.c_str(), X_OK) != 0) return "memtop binary not executable: " + m;
    return bpf_problem();
}

bool env_ok() {
    static const std::string problem = env_problem();
    if (problem.empty()) return true;
    if (ci_mode())
        FAIL("runtime test environment unusable (CI=true): " << problem);
    else
        WARN("skipped: " << problem);
    return false;
}

bool have_prog(const std::string& target) {
    std::string p = prog_path(target);
    if (!p.empty() && access(p.c_str(), X_OK) == 0) return true;
    if (ci_mode())
        FAIL("test program " << target << " not built");
    else
        WARN("skipped: test program " << target << " not built");
    return false;
}

// ---------------------------------------------------------------- processes

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

static void close_fd(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
}

static void split_lines(std::string& partial, std::vector<std::string>& lines, bool eof) {
    size_t pos;
    while ((pos = partial.find('\n')) != std::string::npos) {
        std::string l = partial.substr(0, pos);
        if (!l.empty() && l.back() == '\r') l.pop_back();
        lines.push_back(std::move(l));
        partial.erase(0, pos + 1);
    }
    if (eof && !partial.empty()) {
        lines.push_back(partial);
        partial.clear();
    }
}

static bool try_reap(Child& c, bool block) {
    if (c.reaped || c.pid <= 0) return c.reaped;
    int st = 0;
    pid_t r;
    do r = waitpid(c.pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == c.pid) {
        c.reaped = true;
        c.status = st;
    } else if (r < 0) {  // not our child anymore?
        c.reaped = true;
        c.status = 0xff00;  // exit 255
    }
    return c.reaped;
}

Child::~Child() {
    close_stdin();
    if (pid > 0 && !reaped) {
        ::kill(pid, SIGTERM);
        pump_until(
            {this}, [this] { return reaped; }, 3s);
        if (!reaped) {
            ::kill(pid, SIGKILL);
            try_reap(*this, true);
        }
    }
    close_fd(out);
    close_fd(err);
}

int Child::exit_code() const {
    if (!reaped) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

void Child::close_stdin() {
    close_fd(in);
}

bool Child::write_stdin(const std::string& s) {
    if (in < 0) return false;
    const char* p = s.data();
    size_t left = s.size();
    while (left > 0) {
        ssize_t n = ::write(in, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        left -= size_t(n);
    }
    return true;
}

bool Child::signal(int sig) {
    return pid > 0 && !reaped && ::kill(pid, sig) == 0;
}

std::string Child::describe(size_t max_out_lines) const {
    std::ostringstream o;
    o << name << " (pid " << pid << "): ";
    if (!reaped)
        o << "still running";
    else if (WIFEXITED(status))
        o << "exited " << WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        o << "killed by signal " << WTERMSIG(status);
    o << "\n  stderr:";
    for (const auto& l : err_lines) o << "\n    " << l;
    if (!err_partial.empty()) o << "\n    " << err_partial;
    o << "\n  stdout (" << out_lines.size() << " lines), last:";
    size_t from = out_lines.size() > max_out_lines ? out_lines.size() - max_out_lines : 0;
    for (size_t i = from; i < out_lines.size(); i++) {
        std::string l = out_lines[i];
        if (l.size() > 600) l = l.substr(0, 600) + "...";
        o << "\n    " << l;
    }
    return o.str();
}

bool spawn(Child& c, const std::vector<std::string>& argv, bool pipe_stdin, std::string* error) {
    c.name = argv.empty() ? "?" : basename_of(argv[0]);
    int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, execp[2] = {-1, -1};
    auto fail = [&](const char* what) {
        if (error) *error = std::string(what) + ": " + std::strerror(errno);
        for (int* p : {inp, outp, errp, execp})
            for (int i = 0; i < 2; i++)
                if (p[i] >= 0) close(p[i]);
        return false;
    };
    if ((pipe_stdin && pipe2(inp, O_CLOEXEC) != 0) || pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
        pipe2(execp, O_CLOEXEC) != 0)
        return fail("pipe2");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    pid_t pid = fork();
    if (pid < 0) return fail("fork");
    if (pid == 0) {
        // child: only async-signal-safe calls from here on
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaction(s, &sa, nullptr);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        int in_fd = pipe_stdin ? inp[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in_fd < 0 || dup2(in_fd, 0) < 0 || dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0) _exit(126);
        execvp(args[0], args.data());
        int e = errno;
        ssize_t ignored = write(execp[1], &e, sizeof e);
        (void)ignored;
        _exit(127);
    }
    close(execp[1]);
    int e = 0;
    ssize_t n;
    do n = read(execp[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    close(execp[0]);
    if (pipe_stdin) close(inp[0]);
    close(outp[1]);
    close(errp[1]);
    c.pid = pid;
    c.in = pipe_stdin ? inp[1] : -1;
    c.out = outp[0];
    c.err = errp[0];
    fcntl(c.out, F_SETFL, fcntl(c.out, F_GETFL) | O_NONBLOCK);
    fcntl(c.err, F_SETFL, fcntl(c.err, F_GETFL) | O_NONBLOCK);
    if (n == sizeof e) {
        try_reap(c, true);
        errno = e;
        if (error) *error = "exec " + argv[0] + ": " + std::strerror(e);
        return false;
    }
    return true;
}

static void read_fd(int& fd, std::string& partial, std::vector<std::string>& lines) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN) return;
            close_fd(fd);
            split_lines(partial, lines, true);
            return;
        }
        partial.append(buf, size_t(n));
        split_lines(partial, lines, false);
        if (size_t(n) < sizeof buf) return;
    }
}

bool pump_until(const std::vector<Child*>& all, const std::function<bool()>& cond, Millis timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (Child* c : all) try_reap(*c, false);
        if (cond()) return true;
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        std::vector<pollfd> pfds;
        std::vector<std::pair<Child*, bool>> who;  // (child, is_stderr)
        for (Child* c : all) {
            if (c->out >= 0) {
                pfds.push_back({c->out, POLLIN, 0});
                who.push_back({c, false});
            }
            if (c->err >= 0) {
                pfds.push_back({c->err, POLLIN, 0});
                who.push_back({c, true});
            }
        }
        auto left = std::chrono::duration_cast<Millis>(deadline - now).count();
        int wait_ms = int(std::min<long long>(left, 20));
        if (pfds.empty()) {
            bool all_done = true;
            for (Child* c : all) all_done = all_done && c->reaped;
            if (all_done) return cond();
            std::this_thread::sleep_for(Millis(wait_ms));
            continue;
        }
        int r = poll(pfds.data(), pfds.size(), wait_ms);
        if (r < 0 && errno != EINTR) return cond();
        if (r <= 0) continue;
        for (size_t i = 0; i < pfds.size(); i++) {
            if (!pfds[i].revents) continue;
            Child* c = who[i].first;
            if (who[i].second)
                read_fd(c->err, c->err_partial, c->err_lines);
            else
                read_fd(c->out, c->out_partial, c->out_lines);
        }
    }
}

std::optional<std::string> wait_line(const std::vector<Child*>& all, Child& c, bool stderr_stream,
                                     const std::function<bool(const std::string&)>& pred, Millis timeout,
                                     size_t* from) {
    size_t idx = from ? *from : 0;
    std::optional<std::string> found;
    auto& lines = stderr_stream ? c.err_lines : c.out_lines;
    pump_until(
        all,
        [&] {
            for (; idx < lines.size(); idx++) {
                if (pred(lines[idx])) {
                    found = lines[idx];
                    idx++;
                    return true;
                }
            }
            // stream closed: nothing more will come
            return (stderr_stream ? c.err : c.out) < 0;
        },
        timeout);
    if (from) *from = idx;
    return found;
}

bool wait_exit(const std::vector<Child*>& all, Child& c, Millis timeout) {
    if (!pump_until(
            all, [&] { return c.reaped; }, timeout))
        return false;
    // drain what is left (bounded: a grandchild might keep the pipes open)
    pump_until(
        all, [&] { return c.out < 0 && c.err < 0; }, 2s);
    return true;
}

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

static long long num(const json& j, const char* key);

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

// ---------------------------------------------------------------- reports

void check_report_shape(const json& r) {
    REQUIRE(r.is_object());
    CHECK(r.value("type", std::string()) == "report");
    REQUIRE(r.contains("final"));
    CHECK(r["final"].is_boolean());
    REQUIRE(r.contains("time"));
    REQUIRE(r["time"].is_string());
    const std::string t = r["time"].get<std::string>();
    INFO("time: " << t);
    // RFC 3339: 2024-01-02T03:04:05[.frac](Z|+hh:mm)
    CHECK(t.size() >= 20);
    if (t.size() >= 20) {
        bool ok = true;
        for (size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u, 11u, 12u, 14u, 15u, 17u, 18u})
            ok = ok && std::isdigit(static_cast<unsigned char>(t[i]));
        ok = ok && t[4] == '-' && t[7] == '-' && (t[10] == 'T' || t[10] == 't') && t[13] == ':' && t[16] == ':';
        ok = ok && (t.back() == 'Z' || t.back() == 'z' || t[t.size() - 3] == ':');
        CHECK(ok);
    }
    REQUIRE(r.contains("processes"));
    REQUIRE(r["processes"].is_array());
    for (const auto& p : r["processes"]) {
        INFO("process: " << p.dump());
        REQUIRE(p.is_object());
        CHECK(p.contains("pid"));
        CHECK(p.contains("comm"));
        CHECK((p.contains("pid") && p["pid"].is_number_integer()));
        // Heap columns: numbers for heap-traced processes, null for the others
        // (the system view lists every process).
        const bool traced = p.contains("heap_bytes") && !p["heap_bytes"].is_null();
        for (const char* k : {"heap_bytes", "heap_peak_bytes", "allocs_total", "frees_total"})
            CHECK((p.contains(k) && (traced ? p[k].is_number_integer() : p[k].is_null())));
        CHECK((p.contains("comm") && p["comm"].is_string()));
        if (traced) CHECK(num(p, "heap_peak_bytes") >= num(p, "heap_bytes"));
        if (p.contains("rss_bytes")) {
            for (const char* k : {"rss_bytes", "rss_peak_bytes", "rss_anon_bytes", "rss_file_bytes", "rss_shmem_bytes",
                                  "swap_bytes", "growth_bytes"})
                CHECK((p.contains(k) && p[k].is_number_integer()));
            CHECK(num(p, "rss_peak_bytes") >= num(p, "rss_bytes"));
        }
    }
    REQUIRE(r.contains("stacks"));
    REQUIRE(r["stacks"].is_array());
    for (const auto& s : r["stacks"]) {
        INFO("stack: " << s.dump().substr(0, 400));
        REQUIRE(s.is_object());
        for (const char* k : {"pid", "bytes", "allocs", "alloc_bytes_total", "allocs_total"})
            CHECK((s.contains(k) && s[k].is_number_integer()));
        CHECK(num(s, "bytes") > 0);  // only stacks with outstanding bytes are listed
        CHECK(num(s, "alloc_bytes_total") >= num(s, "bytes"));
        CHECK(num(s, "allocs_total") >= num(s, "allocs"));
        REQUIRE(s.contains("frames"));
        REQUIRE(s["frames"].is_array());
        CHECK(!s["frames"].empty());
        for (const auto& f : s["frames"]) {
            REQUIRE(f.is_object());
            CHECK((f.contains("address") && f["address"].is_string() &&
                   starts_with(f["address"].get<std::string>(), "0x")));
            for (const char* k : {"function", "module", "file"})
                CHECK((f.contains(k) && (f[k].is_null() || f[k].is_string())));
            for (const char* k : {"offset", "line"})
                CHECK((f.contains(k) && (f[k].is_null() || f[k].is_number_integer())));
        }
    }
    REQUIRE(r.contains("lost"));
    CHECK(r["lost"].is_object());
}

std::string basename_of(const std::string& path) {
    size_t p = path.find_last_of('/');
    return p == std::string::npos ? path : path.substr(p + 1);
}

std::string fn_of(const json& frame) {
    if (!frame.is_object()) return "<bad frame>";
    auto it = frame.find("function");
    if (it == frame.end() || !it->is_string()) return "?";
    return it->get<std::string>();
}

std::optional<json> next_report(const std::vector<Child*>& all, Child& memtop, size_t& seen) {
    size_t from = seen;
    auto line = wait_line(
        all, memtop, false, [](const std::string& l) { return starts_with(l, "{"); }, kTimeout, &from);
    if (!line) return std::nullopt;
    seen = from;
    return json::parse(*line);
}

const json* entry(const json& report, int pid) {
    for (const auto& p : report["processes"])
        if (p["pid"] == pid) return &p;
    return nullptr;
}

bool fn_is(const json& frame, const std::string& name) {
    if (!frame.is_object()) return false;
    auto it = frame.find("function");
    if (it == frame.end() || !it->is_string()) return false;
    const std::string& s = it->get_ref<const std::string&>();
    return s == name || starts_with(s, name + "(");
}

static long long num(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return LLONG_MIN;  // missing/invalid: never equal to an expectation
    return it->get<long long>();
}

static ProcStats to_stats(const json& p) {
    ProcStats s;
    s.found = true;
    s.pid = int(num(p, "pid"));
    s.comm = p.value("comm", std::string());
    s.heap_bytes = num(p, "heap_bytes");
    s.heap_peak_bytes = num(p, "heap_peak_bytes");
    s.allocs_total = num(p, "allocs_total");
    s.frees_total = num(p, "frees_total");
    return s;
}

ProcStats proc_stats(const json& report, int pid) {
    auto it = report.find("processes");
    if (it != report.end() && it->is_array())
        for (const auto& p : *it)
            if (p.is_object() && num(p, "pid") == pid) return to_stats(p);
    ProcStats s;
    s.pid = pid;
    return s;
}

ProcStats proc_by_comm(const json& report, const std::string& prog_name) {
    auto it = report.find("processes");
    if (it == report.end() || !it->is_array()) return {};
    std::string want = prog_name.substr(0, 15);
    for (const auto& p : *it)
        if (p.is_object() && p.value("comm", std::string()) == want) return to_stats(p);
    if (it->size() == 1 && (*it)[0].is_object()) return to_stats((*it)[0]);
    return {};
}

std::vector<const json*> stacks_of(const json& report, int pid) {
    std::vector<const json*> r;
    auto it = report.find("stacks");
    if (it == report.end() || !it->is_array()) return r;
    for (const auto& s : *it)
        if (s.is_object() && num(s, "pid") == pid) r.push_back(&s);
    return r;
}

static const json& frames_of(const json& stack) {
    static const json empty = json::array();
    auto it = stack.find("frames");
    return (it != stack.end() && it->is_array()) ? *it : empty;
}

static Sum sum_of(const std::vector<const json*>& stacks) {
    Sum s;
    for (const json* st : stacks) {
        s.bytes += num(*st, "bytes");
        s.allocs += num(*st, "allocs");
        s.alloc_bytes_total += num(*st, "alloc_bytes_total");
        s.allocs_total += num(*st, "allocs_total");
        s.stacks++;
    }
    return s;
}

std::vector<const json*> stacks_frame0(const json& report, int pid, const std::string& fn) {
    std::vector<const json*> r;
    for (const json* st : stacks_of(report, pid)) {
        const json& f = frames_of(*st);
        if (!f.empty() && fn_is(f[0], fn)) r.push_back(st);
    }
    return r;
}

Sum sum_frame0(const json& report, int pid, const std::string& fn) {
    return sum_of(stacks_frame0(report, pid, fn));
}

std::vector<const json*> stacks_any_frame(const json& report, int pid, const std::string& fn) {
    std::vector<const json*> r;
    for (const json* st : stacks_of(report, pid))
        for (const auto& f : frames_of(*st))
            if (fn_is(f, fn)) {
                r.push_back(st);
                break;
            }
    return r;
}

Sum sum_any_frame(const json& report, int pid, const std::string& fn) {
    return sum_of(stacks_any_frame(report, pid, fn));
}

Sum sum_all(const json& report, int pid) {
    return sum_of(stacks_of(report, pid));
}

std::string chain_of(const json& stack) {
    std::string r;
    for (const auto& f : frames_of(stack)) {
        if (!r.empty()) r += " <- ";
        r += fn_of(f);
    }
    return r;
}

std::string describe_stacks(const json& report, int pid, size_t max_stacks) {
    std::ostringstream o;
    auto st = stacks_of(report, pid);
    o << st.size() << " stacks of pid " << pid << ":";
    for (size_t i = 0; i < st.size() && i < max_stacks; i++) {
        const json& s = *st[i];
        o << "\n  bytes=" << num(s, "bytes") << " allocs=" << num(s, "allocs")
          << " alloc_bytes_total=" << num(s, "alloc_bytes_total") << " allocs_total=" << num(s, "allocs_total") << "  "
          << chain_of(s);
        const json& f = frames_of(s);
        if (!f.empty() && f[0].is_object()) {
            o << "  [" << f[0].value("address", std::string("?"));
            if (f[0].contains("file") && f[0]["file"].is_string()) o << " " << f[0]["file"].get<std::string>();
            if (f[0].contains("line") && f[0]["line"].is_number_integer()) o << ":" << f[0]["line"].get<long long>();
            o << "]";
        }
    }
    return o.str();
}

}  // namespace rt
