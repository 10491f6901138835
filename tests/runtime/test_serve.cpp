// --listen read by its real consumers: a Prometheus server (Debian's
// `prometheus`) scrapes memtop while it traces a program holding known
// allocations, and promtool checks the exposition. Tagged [host]: the
// kernel-matrix VMs have neither.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "expect.h"
#include "harness.h"
#include "pprof_tool.h"

using namespace rt;

namespace {

std::string find_tool(const std::string& name) {
    for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
        std::string p = std::string(dir) + "/" + name;
        if (access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

bool prometheus_ok() {
    if (!find_tool("prometheus").empty() && !find_tool("promtool").empty()) return true;
    if (ci_mode())
        FAIL("prometheus/promtool not installed (CI=true); tools/install-deps.sh installs them");
    else
        WARN("skipped: prometheus not installed (tools/install-deps.sh installs it)");
    return false;
}

// One HTTP exchange on loopback, as sent (HTTP/1.0: no chunking, the server
// closes). The whole answer, or "" if nothing could be sent.
std::string http_raw(int port, const std::string& request) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "";
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
}

// A GET whose answer comes in two parts: the status and headers at once,
// the body later (a delta profile's, when its window closes).
struct Pending {
    int fd = -1;
    std::string head;  // status line and headers
    std::string body;  // what came after them so far
};

Pending start_get(int port, const std::string& path) {
    Pending p;
    p.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p.fd < 0) return p;
    timeval tv{30, 0};
    setsockopt(p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(p.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        send(p.fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
        return p;
    std::string got;
    char buf[4096];
    ssize_t n;
    while (got.find("\r\n\r\n") == std::string::npos && (n = read(p.fd, buf, sizeof buf)) > 0)
        got.append(buf, static_cast<size_t>(n));
    auto at = got.find("\r\n\r\n");
    if (at == std::string::npos) return p;
    p.head = got.substr(0, at + 4);
    p.body = got.substr(at + 4);
    return p;
}

// The rest of the body, until the server closes.
std::string finish_get(Pending& p) {
    char buf[65536];
    ssize_t n;
    while ((n = read(p.fd, buf, sizeof buf)) > 0) p.body.append(buf, static_cast<size_t>(n));
    close(p.fd);
    p.fd = -1;
    return p.body;
}

std::string http_get(int port, const std::string& path, const std::string& headers = "") {
    return http_raw(port, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n" + headers + "\r\n");
}

int status_of(const std::string& response) {
    // "HTTP/1.x NNN ..."
    return response.size() > 12 ? std::atoi(response.c_str() + 9) : 0;
}

std::string body_of(const std::string& response) {
    auto at = response.find("\r\n\r\n");
    return at == std::string::npos ? "" : response.substr(at + 4);
}

std::string url_encode(const std::string& s) {
    std::string out;
    char buf[4];
    for (unsigned char c : s) {
        if (isalnum(c) || c == '_' || c == '.' || c == '-') {
            out += static_cast<char>(c);
        } else {
            snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

// A port free now (the kernel's pick), for a server that cannot report its own.
int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
}

// The one sample value of an instant query, or nullopt while there is none.
std::optional<std::string> query_one(int prom_port, const std::string& promql) {
    std::string resp = http_get(prom_port, "/api/v1/query?query=" + url_encode(promql));
    if (status_of(resp) != 200) return std::nullopt;
    json j = json::parse(body_of(resp), nullptr, false);
    if (j.is_discarded() || j["status"] != "success") return std::nullopt;
    const json& res = j["data"]["result"];
    if (!res.is_array() || res.size() != 1) return std::nullopt;
    return res[0]["value"][1].get<std::string>();
}

// promtool's verdict on an exposition: "" if it passes, else what it said.
std::string promtool_check(const std::string& exposition, const std::string& dir) {
    std::string file = dir + "/exposition.txt";
    std::ofstream(file) << exposition;
    std::string cmd = find_tool("promtool") + " check metrics < " + file + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    int rc = p ? pclose(p) : -1;
    return rc == 0 ? "" : "promtool failed (" + std::to_string(rc) + "): " + out;
}

// A host tool (curl, openssl) run to its end while `all` are pumped: its
// exit code and stdout lines. REQUIREs that it starts and ends.
std::pair<int, std::vector<std::string>> run_tool(const std::vector<Child*>& all,
                                                  const std::vector<std::string>& argv) {
    Child c;
    std::string err;
    REQUIRE(spawn(c, argv, false, &err));
    std::vector<Child*> with = all;
    with.push_back(&c);
    REQUIRE(wait_exit(with, c, std::chrono::seconds(60)));
    INFO(c.describe(5));
    return {c.exit_code(), c.out_lines};
}

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

// A file holding `text`, with `mode`.
std::string write_file(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    REQUIRE(chmod(path.c_str(), mode) == 0);
    return path;
}

json lost_of(const json& report) {
    return report["lost"];
}

}  // namespace

TEST_CASE("--listen: Prometheus scrapes memtop; heap and RSS as memtop's JSON says", "[bpf][serve][host]") {
    RT_REQUIRE_ENV();
    if (!prometheus_ok()) return;
    const std::string target = "c_sites_fp";
    if (!have_prog(target)) return;

    char tmpl[] = "/tmp/memtop-serve-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;

    Child prog, memtop, prom;
    int pid = start_prog(prog, {prog_path(target), "--wait"});
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--listen", "0", "--metrics-pid-label"});
    start_memtop(memtop, argv);
    std::vector<Child*> all = {&prog, &memtop, &prom};
    wait_tracing(all, memtop, {pid});
    auto serving = wait_line(all, memtop, true, [](const std::string& l) { return starts_with(l, "memtop: serving"); });
    REQUIRE(serving);
    int port = std::atoi(serving->c_str() + serving->rfind("(port ") + 6);
    REQUIRE(port > 0);
    go(all, prog);

    // memtop's own view of the held program, once it has all of it.
    size_t seen = 0;
    auto rep = report_until(all, memtop, seen, [&](const json& r) {
        ProcStats p = proc_stats(r, pid);
        return p.found && p.heap_bytes == C_TOTAL_BYTES;
    });
    REQUIRE(rep);
    const json* e = entry(*rep, pid);
    REQUIRE(e);
    INFO("memtop's report: " << e->dump());

    SECTION("Prometheus stores the exact numbers; promtool accepts the exposition") {
        int prom_port = free_port();
        std::ofstream(dir + "/prometheus.yml")
            << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            << "scrape_configs:\n  - job_name: memtop\n    static_configs:\n      - targets: ['127.0.0.1:" << port
            << "']\n";
        std::string err;
        REQUIRE(spawn(
            prom,
            {find_tool("prometheus"), "--config.file=" + dir + "/prometheus.yml",
             "--storage.tsdb.path=" + dir + "/data", "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
            false, &err));
        std::string sel = "{job=\"memtop\",pid=\"" + std::to_string(pid) + "\"}";
        std::optional<std::string> heap, rss;
        bool found = pump_until(
            all,
            [&] {
                heap = query_one(prom_port, "memtop_process_heap_bytes" + sel);
                rss = query_one(prom_port, "sum(memtop_process_resident_bytes" + sel + ")");
                return heap && rss;
            },
            std::chrono::seconds(60));
        INFO(prom.describe(5));
        REQUIRE(found);
        CHECK(std::stoll(*heap) == C_TOTAL_BYTES);
        // The program is idle: its RSS is what every later report says.
        auto now = next_report(all, memtop, seen);
        REQUIRE(now);
        const json* n = entry(*now, pid);
        REQUIRE(n);
        CHECK(std::stoll(*rss) == (*n)["rss_bytes"].get<long long>());
        CHECK(std::stoll(*rss) == (*e)["rss_bytes"].get<long long>());
        auto allocs = query_one(prom_port, "memtop_process_allocations_total" + sel);
        REQUIRE(allocs);
        CHECK(std::stoll(*allocs) == (*e)["allocs_total"].get<long long>());
        // memtop's own anonymous memory: a part of its resident memory,
        // compared in one PromQL expression (one scrape's samples).
        auto anon = query_one(prom_port,
                              "(memtop_resident_anon_bytes{job=\"memtop\"} <= "
                              "memtop_resident_bytes{job=\"memtop\"}) > 0");
        CHECK(anon);
        // Prometheus asked for OpenMetrics and read it (up is 1 only then).
        auto up = query_one(prom_port, "up{job=\"memtop\"}");
        REQUIRE(up);
        CHECK(*up == "1");

        std::string text = http_get(port, "/metrics");
        REQUIRE(status_of(text) == 200);
        CHECK(text.find("text/plain; version=0.0.4") != std::string::npos);
        CHECK(promtool_check(body_of(text), dir) == "");
        std::string om = http_get(port, "/metrics", "Accept: application/openmetrics-text;version=1.0.0\r\n");
        REQUIRE(status_of(om) == 200);
        CHECK(om.find("application/openmetrics-text") != std::string::npos);
        CHECK(body_of(om).size() >= 6);
        CHECK(body_of(om).substr(body_of(om).size() - 6) == "# EOF\n");
    }

    SECTION("go tool pprof reads /debug/pprof/heap?pid=N: each site's exact outstanding bytes and blocks") {
        auto gobin = go_binary();
        if (!gobin) {
            if (ci_mode()) FAIL("go tool pprof is needed (golang-go, tools/deps.txt)");
            WARN("skipped: no go (golang-go) for go tool pprof");
            return;
        }
        const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/debug/pprof/heap";
        Raw raw = parse_raw(pprof(*gobin, dir, {"-raw", base + "?pid=" + std::to_string(pid)}));
        for (const expect::Site& site : expect::c_sites) {
            if (site.bytes == 0) continue;
            INFO("site " << site.function);
            Sum sum = sum_frame0(*rep, pid, site.function);
            REQUIRE(sum.stacks > 0);
            CHECK(raw.by_leaf[site.function][3] == site.bytes);
            CHECK(raw.by_leaf[site.function][3] == sum.bytes);
            CHECK(raw.by_leaf[site.function][2] == sum.allocs);
        }
        bool pid_label = false;
        for (const auto& l : raw.labels) pid_label |= l.find("pid:[" + std::to_string(pid) + "]") != std::string::npos;
        CHECK(pid_label);
        // Another pid's profile holds none of this one's samples.
        Raw other = parse_raw(pprof(*gobin, dir, {"-raw", base + "?pid=" + std::to_string(pid + 1)}));
        CHECK(other.by_leaf.empty());
        CHECK(status_of(http_get(port, "/debug/pprof/heap?pid=abc")) == 400);
        // A delta's window is bounded (1 to 300 s); ?seconds=N itself is [serve] "delta".
        for (const char* bad : {"0", "301", "-1", "abc", ""})
            CHECK(status_of(http_get(port, "/debug/pprof/heap?seconds=" + std::string(bad))) == 400);
        CHECK(status_of(http_raw(port, "POST /debug/pprof/heap HTTP/1.0\r\nContent-Length: 0\r\n\r\n")) == 405);
    }

    SECTION("the JSON endpoint is --json's report; bad requests get 4xx and change nothing") {
        std::string j = http_get(port, "/report.json");
        REQUIRE(status_of(j) == 200);
        json served = json::parse(body_of(j));
        ProcStats p = proc_stats(served, pid);
        CHECK(p.heap_bytes == C_TOTAL_BYTES);
        CHECK(p.allocs_total == (*e)["allocs_total"].get<long long>());

        CHECK(status_of(http_get(port, "/nothing-here")) == 404);
        CHECK(status_of(http_raw(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n")) == 405);
        CHECK(status_of(http_raw(port, "DELETE /report.json HTTP/1.0\r\n\r\n")) == 405);
        int garbage = status_of(http_raw(port, "\x01\x02 not http at all\r\n\r\n"));
        CHECK(garbage >= 400);
        CHECK(garbage < 500);
        std::string huge = http_raw(port, "GET /metrics HTTP/1.0\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
        int st = status_of(huge);
        CHECK((st == 0 || (st >= 400 && st < 500)));          // refused, or the connection dropped
        CHECK(status_of(http_get(port, "/metrics")) == 200);  // still serving
    }

    SECTION("8 concurrent scrapers for 3 s: memtop loses nothing because of them") {
        auto before = next_report(all, memtop, seen);
        REQUIRE(before);
        std::atomic<bool> stop{false};
        std::atomic<long> ok{0}, bad{0};
        std::vector<std::thread> scrapers;
        for (int i = 0; i < 8; i++)
            scrapers.emplace_back([&, i] {
                while (!stop) {
                    std::string r = http_get(port, i % 2 ? "/metrics" : "/report.json");
                    (status_of(r) == 200 ? ok : bad)++;
                }
            });
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        pump_until(
            all, [&] { return std::chrono::steady_clock::now() >= until; }, std::chrono::seconds(10));
        stop = true;
        for (auto& t : scrapers) t.join();
        auto after = next_report(all, memtop, seen);
        REQUIRE(after);
        INFO("scrapes answered: " << ok << ", failed: " << bad << "; memtop cpu " << (*after)["self"].dump());
        CHECK(ok > 0);
        CHECK(bad == 0);
        CHECK(lost_of(*after) == lost_of(*before));
        CHECK(proc_stats(*after, pid).heap_bytes == C_TOTAL_BYTES);
    }

    stop_memtop(all, memtop, SIGINT);
    end_prog(all, prog);
    if (prom.pid > 0) {
        prom.signal(SIGTERM);
        wait_exit(all, prom);
    }
    std::string rm = "rm -rf " + dir;
    CHECK(system(rm.c_str()) == 0);
}

TEST_CASE("--listen: /debug/pprof/heap?seconds=N is what the window allocated and freed", "[bpf][serve][host]") {
    RT_REQUIRE_ENV();
    auto gobin = go_binary();
    if (!gobin) {
        if (ci_mode()) FAIL("go tool pprof is needed (golang-go, tools/deps.txt)");
        WARN("skipped: no go (golang-go) for go tool pprof");
        return;
    }
    const std::string target = "delta_sites_fp";
    if (!have_prog(target)) return;
    char tmpl[] = "/tmp/memtop-delta-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;

    Child prog, memtop;
    int pid = start_prog(prog, {prog_path(target)});
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--listen", "0"});
    start_memtop(memtop, argv);
    std::vector<Child*> all = {&prog, &memtop};
    wait_tracing(all, memtop, {pid});
    auto serving = wait_line(all, memtop, true, [](const std::string& l) { return starts_with(l, "memtop: serving"); });
    REQUIRE(serving);
    int port = std::atoi(serving->c_str() + serving->rfind("(port ") + 6);
    REQUIRE(port > 0);
    const std::string heap = "/debug/pprof/heap?pid=" + std::to_string(pid);

    // The allocations before the window, in a published report: the window
    // opens at the last report before the request, so they are before it.
    tell(all, prog, "go", "before");
    size_t seen = 0;
    auto before = report_until(all, memtop, seen, [&](const json& r) {
        return proc_stats(r, pid).heap_bytes == DELTA_HELD_SIZE + DELTA_FREED_SIZE;
    });
    REQUIRE(before);

    SECTION("go tool pprof -raw of the delta: exactly the window's allocations and frees") {
        constexpr int window = 3;
        Pending p = start_get(port, heap + "&seconds=" + std::to_string(window));
        INFO("answer's head: " << p.head);
        REQUIRE(status_of(p.head) == 200);
        REQUIRE(p.head.find("X-Memtop-Window-Start: ") != std::string::npos);
        // The window is open (its start is in the headers): allocate in it.
        auto opened = std::chrono::steady_clock::now();
        tell(all, prog, "go", "during");
        REQUIRE(std::chrono::steady_clock::now() - opened < std::chrono::seconds(window));
        std::atomic<bool> done{false};
        std::thread reader([&] {
            finish_get(p);
            done = true;
        });
        bool finished = pump_until(
            all, [&] { return done.load(); }, std::chrono::seconds(30));
        if (!finished) shutdown(p.fd, SHUT_RDWR);
        reader.join();
        REQUIRE(finished);
        std::string file = dir + "/delta.pb.gz";
        std::ofstream(file, std::ios::binary) << p.body;
        auto lines = pprof(*gobin, dir, {"-raw", file});
        Raw raw = parse_raw(lines);
        using V = std::array<long long, 4>;  // alloc_objects alloc_space inuse_objects inuse_space
        CHECK(raw.by_leaf["window_site"] == V{DELTA_WINDOW_N, DELTA_WINDOW_N * DELTA_WINDOW_SIZE, DELTA_WINDOW_N,
                                              DELTA_WINDOW_N * DELTA_WINDOW_SIZE});
        CHECK(raw.by_leaf["churn_site"] == V{DELTA_CHURN_N, DELTA_CHURN_N * DELTA_CHURN_SIZE, 0, 0});
        CHECK(raw.by_leaf["freed_site"] == V{0, 0, -1, -DELTA_FREED_SIZE});
        CHECK(raw.by_leaf.count("held_site") == 0);  // unchanged in the window
        CHECK(raw.by_leaf.size() == 3);
        // The profile says its window: at least the N seconds asked.
        bool duration = false;
        for (const auto& l : lines)
            if (starts_with(l, "Duration:")) duration = l.find("Duration: 0") == std::string::npos;
        CHECK(duration);
    }

    SECTION("go tool pprof fetches ?seconds= itself; windows are bounded in length and number") {
        // Nothing allocates: the window's profile holds none of the program's stacks.
        Raw idle =
            parse_raw(pprof(*gobin, dir, {"-raw", "http://127.0.0.1:" + std::to_string(port) + heap + "&seconds=1"}));
        CHECK(idle.by_leaf.empty());
        for (const char* bad : {"0", "301", "1.5", "abc"})
            CHECK(status_of(http_get(port, heap + "&seconds=" + bad)) == 400);
        // Two windows at once, at most: a third is refused until one closes.
        Pending a = start_get(port, heap + "&seconds=2"), b = start_get(port, heap + "&seconds=2");
        CHECK(status_of(a.head) == 200);
        CHECK(status_of(b.head) == 200);
        std::string third = http_get(port, heap + "&seconds=1");
        CHECK(status_of(third) == 503);
        CHECK(third.find("Retry-After: 1") != std::string::npos);
        CHECK(status_of(http_get(port, "/metrics")) == 200);  // scrapes go on meanwhile
        std::atomic<bool> done{false};
        std::thread reader([&] {
            finish_get(a);
            finish_get(b);
            done = true;
        });
        bool finished = pump_until(
            all, [&] { return done.load(); }, std::chrono::seconds(30));
        reader.join();
        REQUIRE(finished);
        Pending c = start_get(port, heap + "&seconds=1");
        CHECK(status_of(c.head) == 200);
        close(c.fd);  // a client that leaves: its window still ends, and frees its place
    }

    stop_memtop(all, memtop, SIGINT);
    end_prog(all, prog);
    std::string rm = "rm -rf " + dir;
    CHECK(system(rm.c_str()) == 0);
}

TEST_CASE("--listen-auth: basic auth, checked by curl; a readable password file is refused", "[bpf][serve][host]") {
    RT_REQUIRE_ENV();
    std::string curl = find_tool("curl");
    if (curl.empty()) {
        if (ci_mode()) FAIL("curl is needed (tools/deps.txt)");
        WARN("skipped: no curl");
        return;
    }
    const std::string target = "c_sites_fp";
    if (!have_prog(target)) return;
    char tmpl[] = "/tmp/memtop-auth-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;
    std::string auth = write_file(dir + "/auth", "prom:s3cret pass\n", 0600);

    // Others could read it: refused, with one message, before anything is traced.
    std::string open_file = write_file(dir + "/auth-644", "prom:s3cret pass\n", 0644);
    Run refused = run_memtop({memtop_path(), "-q", "--listen", "0", "--listen-auth", open_file, "-n", "1"});
    INFO(refused.diag);
    CHECK(refused.exit_code == 2);
    REQUIRE(refused.err_lines.size() == 1);
    CHECK(refused.err_lines[0].find("must be a regular file of mode 0600 or 0400") != std::string::npos);
    CHECK(refused.err_lines[0].find("mode 0644") != std::string::npos);
    Run bad = run_memtop({memtop_path(), "-q", "--listen", "0", "--listen-auth",
                          write_file(dir + "/auth-bad", "no colon\n", 0400), "-n", "1"});
    CHECK(bad.exit_code == 2);
    Run alone = run_memtop({memtop_path(), "-q", "--listen-auth", auth, "-n", "1"});
    CHECK(alone.exit_code == 2);

    Child prog, memtop;
    int pid = start_prog(prog, {prog_path(target), "--wait"});
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--listen", "0", "--listen-auth", auth});
    start_memtop(memtop, argv);
    std::vector<Child*> all = {&prog, &memtop};
    wait_tracing(all, memtop, {pid});
    auto serving = wait_line(all, memtop, true, [](const std::string& l) { return starts_with(l, "memtop: serving"); });
    REQUIRE(serving);
    CHECK(serving->find("basic auth") != std::string::npos);
    int port = std::atoi(serving->c_str() + serving->rfind("(port ") + 6);
    REQUIRE(port > 0);
    go(all, prog);
    size_t seen = 0;
    auto rep =
        report_until(all, memtop, seen, [&](const json& r) { return proc_stats(r, pid).heap_bytes == C_TOTAL_BYTES; });
    REQUIRE(rep);

    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    auto status = [&](const std::vector<std::string>& extra, const std::string& path) {
        std::vector<std::string> a = {curl, "-s", "-o", "/dev/null", "-w", "%{http_code}"};
        a.insert(a.end(), extra.begin(), extra.end());
        a.push_back(base + path);
        auto [rc, out] = run_tool(all, a);
        return out.empty() ? "" : out[0];
    };
    for (const char* path : {"/metrics", "/report.json", "/debug/pprof/heap", "/nothing-here"}) {
        INFO(path);
        CHECK(status({}, path) == "401");
        CHECK(status({"-u", "prom:wrong"}, path) == "401");
        CHECK(status({"-u", "other:s3cret pass"}, path) == "401");
    }
    // The challenge, and nothing of what is served.
    auto [rc, head] = run_tool(all, {curl, "-s", "-D", "-", "-o", "/dev/null", base + "/metrics"});
    CHECK(joined(head).find("WWW-Authenticate: Basic realm=\"memtop\"") != std::string::npos);
    CHECK(status({"-u", "prom:s3cret pass"}, "/nothing-here") == "404");
    CHECK(status({"-u", "prom:s3cret pass"}, "/metrics") == "200");
    auto [jrc, body] = run_tool(all, {curl, "-s", "-f", "-u", "prom:s3cret pass", base + "/report.json"});
    REQUIRE(jrc == 0);
    REQUIRE(body.size() == 1);
    CHECK(proc_stats(json::parse(body[0]), pid).heap_bytes == C_TOTAL_BYTES);

    stop_memtop(all, memtop, SIGINT);
    end_prog(all, prog);
    std::string rm = "rm -rf " + dir;
    CHECK(system(rm.c_str()) == 0);
}

TEST_CASE("--listen-cert/--listen-key: HTTPS; curl and Prometheus scrape over TLS with basic auth",
          "[bpf][serve][host]") {
    RT_REQUIRE_ENV();
    if (!prometheus_ok()) return;
    std::string curl = find_tool("curl"), openssl = find_tool("openssl");
    if (curl.empty() || openssl.empty()) {
        if (ci_mode()) FAIL("curl and openssl are needed (tools/deps.txt)");
        WARN("skipped: no curl or openssl");
        return;
    }
    const std::string target = "c_sites_fp";
    if (!have_prog(target)) return;
    char tmpl[] = "/tmp/memtop-tls-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;
    const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
    // A self-signed certificate for 127.0.0.1: its own CA for the clients.
    auto [grc, gout] =
        run_tool({}, {openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days",
                      "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
    REQUIRE(grc == 0);
    std::string auth = write_file(dir + "/auth", "prom:tls pass\n", 0600);
    write_file(dir + "/password", "tls pass", 0600);  // Prometheus's password_file

    // A certificate and a key that do not belong together: one message, status 2.
    std::string other = dir + "/other.pem";
    REQUIRE(run_tool({}, {openssl, "genpkey", "-algorithm", "RSA", "-out", other}).first == 0);
    Run mismatch = run_memtop({memtop_path(), "-q", "--listen", "0", "--listen-cert", cert, "--listen-key", other});
    INFO(mismatch.diag);
    CHECK(mismatch.exit_code == 2);
    REQUIRE(mismatch.err_lines.size() == 1);
    CHECK(mismatch.err_lines[0].find("not a PEM certificate and the private key that matches it") != std::string::npos);
    CHECK(run_memtop({memtop_path(), "-q", "--listen", "0", "--listen-cert", cert}).exit_code == 2);

    Child prog, memtop, prom;
    int pid = start_prog(prog, {prog_path(target), "--wait"});
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--listen", "0", "--metrics-pid-label", "--listen-auth", auth, "--listen-cert", cert,
                             "--listen-key", key});
    start_memtop(memtop, argv);
    std::vector<Child*> all = {&prog, &memtop, &prom};
    wait_tracing(all, memtop, {pid});
    auto serving = wait_line(all, memtop, true, [](const std::string& l) { return starts_with(l, "memtop: serving"); });
    REQUIRE(serving);
    CHECK(serving->find("https, basic auth") != std::string::npos);
    int port = std::atoi(serving->c_str() + serving->rfind("(port ") + 6);
    REQUIRE(port > 0);
    go(all, prog);
    size_t seen = 0;
    auto rep =
        report_until(all, memtop, seen, [&](const json& r) { return proc_stats(r, pid).heap_bytes == C_TOTAL_BYTES; });
    REQUIRE(rep);
    const json* e = entry(*rep, pid);
    REQUIRE(e);

    const std::string https = "https://127.0.0.1:" + std::to_string(port);
    auto [jrc, body] =
        run_tool(all, {curl, "-s", "-f", "--cacert", cert, "-u", "prom:tls pass", https + "/report.json"});
    REQUIRE(jrc == 0);
    REQUIRE(body.size() == 1);
    CHECK(proc_stats(json::parse(body[0]), pid).heap_bytes == C_TOTAL_BYTES);
    // TLS and auth together: no credentials is still 401, over TLS.
    auto [nrc, code] =
        run_tool(all, {curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", cert, https + "/metrics"});
    CHECK(code == std::vector<std::string>{"401"});
    // Without the CA, curl does not trust the certificate (60: peer certificate cannot be authenticated).
    CHECK(run_tool(all, {curl, "-s", "-u", "prom:tls pass", https + "/metrics"}).first == 60);
    // Plain HTTP to the TLS port gets no HTTP answer; memtop goes on serving.
    auto [prc, pcode] = run_tool(all, {curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "prom:tls pass",
                                       "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
    CHECK(prc != 0);
    CHECK(pcode == std::vector<std::string>{"000"});
    std::string raw = http_get(port, "/metrics");
    CHECK(raw.rfind("HTTP/", 0) == std::string::npos);

    // A real Prometheus scrapes over TLS with basic auth and stores the
    // exact heap and allocation count memtop's JSON gives.
    int prom_port = free_port();
    std::ofstream(dir + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        << "scrape_configs:\n  - job_name: memtop\n    scheme: https\n"
        << "    tls_config:\n      ca_file: " << cert << "\n"
        << "    basic_auth:\n      username: prom\n      password_file: " << dir << "/password\n"
        << "    static_configs:\n      - targets: ['127.0.0.1:" << port << "']\n";
    std::string err;
    REQUIRE(
        spawn(prom,
              {find_tool("prometheus"), "--config.file=" + dir + "/prometheus.yml",
               "--storage.tsdb.path=" + dir + "/data", "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
              false, &err));
    std::string sel = "{job=\"memtop\",pid=\"" + std::to_string(pid) + "\"}";
    std::optional<std::string> heap, allocs;
    bool found = pump_until(
        all,
        [&] {
            heap = query_one(prom_port, "memtop_process_heap_bytes" + sel);
            allocs = query_one(prom_port, "memtop_process_allocations_total" + sel);
            return heap && allocs;
        },
        std::chrono::seconds(60));
    INFO(prom.describe(5));
    REQUIRE(found);
    CHECK(std::stoll(*heap) == (*e)["heap_bytes"].get<long long>());
    CHECK(std::stoll(*heap) == C_TOTAL_BYTES);
    CHECK(std::stoll(*allocs) == (*e)["allocs_total"].get<long long>());
    auto up = query_one(prom_port, "up{job=\"memtop\"}");
    REQUIRE(up);
    CHECK(*up == "1");

    stop_memtop(all, memtop, SIGINT);
    end_prog(all, prog);
    prom.signal(SIGTERM);
    wait_exit(all, prom);
    std::string rm = "rm -rf " + dir;
    CHECK(system(rm.c_str()) == 0);
}

// The capabilities packaging/memtop.service grants, as setpriv's bounding set.
std::string unit_bounding_set() {
    std::ifstream unit(std::string(PROGS_SRC_DIR) + "/../../packaging/memtop.service");
    std::string caps;
    for (std::string line; std::getline(unit, line);)
        if (starts_with(line, "CapabilityBoundingSet=")) caps = line.substr(line.find('=') + 1);
    std::string set = "-all";
    std::istringstream in(caps);
    for (std::string c; in >> c;) {
        std::string name = c.substr(4);  // CAP_
        for (auto& ch : name) ch = static_cast<char>(tolower(ch));
        set += ",+" + name;
    }
    return set;
}

TEST_CASE("the systemd unit's capabilities are enough, and fewer are refused", "[bpf][serve][host]") {
    RT_REQUIRE_ENV();
    std::string setpriv = find_tool("setpriv");
    if (setpriv.empty()) {
        WARN("skipped: no setpriv (util-linux)");
        return;
    }
    std::string caps = unit_bounding_set();
    REQUIRE(caps.find("+bpf") != std::string::npos);
    // The unit's command line, but ending by itself after two reports.
    Run r = run_memtop(
        {setpriv, "--bounding-set=" + caps, memtop_path(), "--json", "-q", "-d", "1", "-n", "2", "--listen", "0"});
    INFO(r.diag);
    CHECK(r.exit_code == 0);
    for (const auto& l : r.err_lines) CHECK(l.find("Operation not permitted") == std::string::npos);
    // Without BPF's capabilities (CAP_BPF, and CAP_SYS_ADMIN that also
    // grants it) loading is refused, so the bounding set above did take
    // effect, and memtop says so as a permission problem (exit 3), not as
    // a kernel's lack (4).
    Run none = run_memtop(
        {setpriv, "--bounding-set=-all,+perfmon,+sys_resource", memtop_path(), "--json", "-q", "-d", "1", "-n", "2"});
    INFO(none.diag);
    CHECK(none.exit_code == 3);
    bool refused = false;
    for (const auto& l : none.err_lines) refused |= l.find("Operation not permitted") != std::string::npos;
    CHECK(refused);
}

// --python-objects: Python's object domain in the exposition, per process,
// apart from its heap. Debian 12's python3.11 keeps the example's list of
// 99,743 ints (tests/progs/python/py_objects.py --keep) and idles on stdin.
TEST_CASE("memtop --listen --python-objects: /metrics has the Python domain's gauges, as memtop's JSON says",
          "[bpf][serve][python][host]") {
    RT_REQUIRE_ENV();
    const std::string python = "/usr/bin/python3.11";
    if (access(python.c_str(), X_OK) != 0) {
        WARN("skipped: no " << python << " (tools/deps.txt)");
        return;
    }
    const bool promtool = !find_tool("promtool").empty();
    if (!promtool && ci_mode()) FAIL("promtool not installed (CI=true); tools/install-deps.sh installs it");
    constexpr long long kInts = 100000 - 257, kIntBytes = 32;  // as test_python_domain.cpp says

    char tmpl[] = "/tmp/memtop-serve-py-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    std::string dir = tmpl;
    Child prog, memtop;
    int pid = start_prog(prog, {python, progs_src("python/py_objects.py"), "--wait", "--keep"});
    std::vector<std::string> argv = memtop_attach_args({pid});
    // --exact: -p samples the domain by default; counted, the list's ints are all there.
    argv.insert(argv.end(), {"--listen", "0", "--metrics-pid-label", "--python-objects", "--exact"});
    start_memtop(memtop, argv);
    std::vector<Child*> all = {&prog, &memtop};
    wait_tracing(all, memtop, {pid});
    auto serving = wait_line(all, memtop, true, [](const std::string& l) { return starts_with(l, "memtop: serving"); });
    REQUIRE(serving);
    int port = std::atoi(serving->c_str() + serving->rfind("(port ") + 6);
    REQUIRE(port > 0);
    go(all, prog);  // app() ran: the list and its ints are kept

    // A report made after "done" that the next one repeats: the script idles.
    size_t seen = 0;
    std::optional<json> prev;
    auto rep = report_until(all, memtop, seen, [&](const json& r) {
        const json* e = entry(r, pid);
        bool same = e && e->contains("python") && prev && entry(*prev, pid) &&
                    (*entry(*prev, pid)).value("python", json()) == (*e)["python"];
        prev = r;
        return same && (*e)["python"]["allocs_total"].get<long long>() >= kInts;
    });
    REQUIRE(rep);
    const json& py = (*entry(*rep, pid))["python"];
    INFO("memtop's report: " << py.dump());
    CHECK(py["bytes"].get<long long>() >= kInts * kIntBytes);

    std::string text = http_get(port, "/metrics");
    REQUIRE(status_of(text) == 200);
    const std::string body = body_of(text);
    INFO(body);
    auto value_of = [&](const std::string& name) -> long long {
        std::istringstream in(body);
        for (std::string l; std::getline(in, l);)
            if (starts_with(l, name + "{") && l.find("pid=\"" + std::to_string(pid) + "\"") != std::string::npos)
                return std::stoll(l.substr(l.rfind(' ') + 1));
        return -1;
    };
    CHECK(value_of("memtop_process_python_bytes") == py["bytes"].get<long long>());
    CHECK(value_of("memtop_process_python_peak_bytes") == py["peak_bytes"].get<long long>());
    CHECK(value_of("memtop_process_python_allocations_total") == py["allocs_total"].get<long long>());
    CHECK(value_of("memtop_process_python_frees_total") == py["frees_total"].get<long long>());
    CHECK(body.find("# TYPE memtop_process_python_bytes gauge") != std::string::npos);
    if (promtool)
        CHECK(promtool_check(body, dir) == "");
    else
        WARN("promtool not installed: the exposition's format is not checked");
    Run r = stop_memtop(all, memtop, SIGINT);
    INFO(r.diag);
    CHECK(r.exit_code == 0);
    CHECK(end_prog(all, prog) == 0);
    std::system(("rm -rf '" + dir + "'").c_str());
}
