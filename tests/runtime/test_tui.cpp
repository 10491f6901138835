// The live screen, driven in a real terminal: memtop runs in a tmux pane of
// the test's own tmux server; keys go in with send-keys and the screen comes
// back with capture-pane. Every wait polls the pane against a deadline.
// Also: a pipe and -b get printed reports, never escape codes.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

std::string find_tmux() {
    for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
        std::string p = std::string(dir) + "/tmux";
        if (access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

// Like RT_REQUIRE_ENV for tmux: fails under CI=true, else skips with a warning.
bool tmux_ok() {
    if (!find_tmux().empty()) return true;
    if (ci_mode())
        FAIL("tmux not installed (CI=true); tools/install-deps.sh installs it");
    else
        WARN("skipped: tmux not installed (tools/install-deps.sh installs it)");
    return false;
}

#define RT_REQUIRE_TMUX()       \
    do {                        \
        if (!tmux_ok()) return; \
    } while (0)

std::string strip_escapes(const std::string& s) {
    static const std::regex esc("\x1b\\[[0-9;?]*[A-Za-z]");
    return std::regex_replace(s, esc, "");
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> lines;
    std::stringstream ss(s);
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
    return lines;
}

bool contains(const std::string& s, const std::string& what) {
    return s.find(what) != std::string::npos;
}

// Does an SGR sequence in s set one of these parameters (7: reverse, 31-37:
// a foreground colour, ...)?
bool has_sgr(const std::string& s, const std::vector<int>& codes) {
    static const std::regex sgr("\x1b\\[([0-9;]*)m");
    for (auto it = std::sregex_iterator(s.begin(), s.end(), sgr); it != std::sregex_iterator(); ++it) {
        std::stringstream ps((*it)[1].str());
        for (std::string p; std::getline(ps, p, ';');)
            if (!p.empty() && std::find(codes.begin(), codes.end(), std::stoi(p)) != codes.end()) return true;
    }
    return false;
}

// memtop in a tmux pane, on a server of the test's own (its socket in a
// fresh directory: the user's tmux is not touched, and no configuration
// file is read). The pane's command writes memtop's exit status to a file,
// then stays a while so the screen after memtop can still be captured.
class Pane {
public:
    Pane(int cols, int rows, const std::string& memtop_args, const std::string& env = "") {
        char tmpl[] = "/tmp/memtop-tui.XXXXXX";
        dir_ = mkdtemp(tmpl) ? tmpl : "/tmp";
        sock_ = dir_ + "/sock";
        status_ = dir_ + "/status";
        std::string cmd = env + (env.empty() ? "" : " ") + memtop_path() + " " + memtop_args + "; echo $? > " +
                          status_ + "; exec sleep 60";
        started_ = tmux({"new-session", "-d", "-s", "mt", "-x", std::to_string(cols), "-y", std::to_string(rows), cmd});
        cmd_ = cmd;
    }
    ~Pane() {
        tmux({"kill-server"});
        unlink(status_.c_str());
        unlink(sock_.c_str());
        rmdir(dir_.c_str());
    }
    bool started() const { return started_; }
    const std::string& command() const { return cmd_; }

    // The pane's text (escapes: with its colours and attributes; history:
    // with what scrolled off the top).
    std::string capture(bool escapes = false, bool history = false) {
        std::vector<std::string> a = {"capture-pane", "-p", "-t", "mt"};
        if (escapes) a.insert(a.begin() + 1, "-e");
        if (history) a.insert(a.end(), {"-S", "-"});
        std::string out;
        tmux(a, &out);
        return out;
    }
    void keys(const std::vector<std::string>& keys) {
        std::vector<std::string> a = {"send-keys", "-t", "mt"};
        a.insert(a.end(), keys.begin(), keys.end());
        tmux(a);
    }
    void text(const std::string& s) { tmux({"send-keys", "-t", "mt", "-l", s}); }
    void resize(int cols, int rows) {
        tmux({"resize-window", "-t", "mt", "-x", std::to_string(cols), "-y", std::to_string(rows)});
    }
    // Polls the pane until pred holds on its text; the last capture goes to
    // *last (for failure messages).
    bool wait_for(const std::function<bool(const std::string&)>& pred, std::string* last = nullptr,
                  bool escapes = false, Millis timeout = 15s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            std::string s = capture(escapes);
            if (last) *last = s;
            if (pred(s)) return true;
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(100ms);
        }
    }
    bool wait_text(const std::string& what, std::string* last = nullptr, Millis timeout = 15s) {
        return wait_for([&](const std::string& s) { return contains(s, what); }, last, false, timeout);
    }
    // memtop's exit status, once it has exited (-1: not within the timeout).
    int exit_status(Millis timeout = 15s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            std::ifstream in(status_);
            int st = -1;
            if (in >> st) return st;
            std::this_thread::sleep_for(100ms);
        }
        return -1;
    }

private:
    bool tmux(std::vector<std::string> args, std::string* out = nullptr) {
        std::vector<std::string> argv = {find_tmux(), "-S", sock_, "-f", "/dev/null"};
        argv.insert(argv.end(), args.begin(), args.end());
        Child c;
        if (!spawn(c, argv, false, nullptr)) return false;
        bool done = wait_exit({&c}, c, 10s);
        if (out) {
            out->clear();
            for (const auto& l : c.out_lines) *out += l + "\n";
        }
        return done && c.exit_code() == 0;
    }
    std::string dir_, sock_, status_, cmd_;
    bool started_ = false;
};

// The process table on a captured screen: from the column titles down.
struct Table {
    std::string header;
    std::vector<int> pids;
    std::vector<std::string> rows;
};

Table table_of(const std::string& screen) {
    Table t;
    bool in = false;
    static const std::regex row("^ *([0-9]+) .*");
    for (const auto& l : split(screen)) {
        if (!in) {
            if (contains(l, "PID") && contains(l, "COMM")) {
                t.header = l;
                in = true;
            }
            continue;
        }
        std::smatch m;
        if (!std::regex_match(l, m, row)) break;
        t.pids.push_back(std::stoi(m[1]));
        t.rows.push_back(l);
    }
    return t;
}

const std::string* row_of(const Table& t, int pid) {
    for (size_t i = 0; i < t.pids.size(); i++)
        if (t.pids[i] == pid) return &t.rows[i];
    return nullptr;
}

int position_of(const Table& t, int pid) {
    auto it = std::find(t.pids.begin(), t.pids.end(), pid);
    return it == t.pids.end() ? -1 : int(it - t.pids.begin());
}

// The pid of the table row drawn in reverse video (the cursor), -1 if none.
int cursor_pid(const std::string& screen_with_escapes) {
    static const std::regex row("^ *([0-9]+) .*");
    for (const auto& l : split(screen_with_escapes)) {
        if (!has_sgr(l, {7})) continue;
        std::smatch m;
        std::string plain = strip_escapes(l);
        if (std::regex_match(plain, m, row)) return std::stoi(m[1]);
    }
    return -1;
}

// Moves the cursor onto pid's row, which must be on the screen.
bool select_row(Pane& pane, int pid) {
    for (int i = 0; i < 60; i++) {
        std::string e = pane.capture(true);
        int cur = cursor_pid(e);
        if (cur == pid) return true;
        Table t = table_of(strip_escapes(e));
        int want = position_of(t, pid), at = position_of(t, cur);
        if (want < 0 || at < 0) return false;
        pane.keys({want < at ? "Up" : "Down"});
        pane.wait_for([&](const std::string& x) { return cursor_pid(x) != cur; }, nullptr, true, 2s);
    }
    return false;
}

bool all_rows_contain(const Table& t, const std::string& what) {
    return std::all_of(t.rows.begin(), t.rows.end(), [&](const std::string& r) { return contains(r, what); });
}

bool ascending(const std::vector<int>& v) {
    return std::is_sorted(v.begin(), v.end());
}
bool descending(const std::vector<int>& v) {
    return std::is_sorted(v.rbegin(), v.rend());
}

}  // namespace

TEST_CASE("live screen: header, table, sorting, filter, cursor, pause, interval, help, quit", "[bpf][tui]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_TMUX();
    REQUIRE(have_prog("rss_grow_fp"));
    Child prog;
    const int pid = start_prog(prog, {prog_path("rss_grow_fp")});
    const std::string spid = std::to_string(pid);

    Pane pane(120, 40, "-d 1");
    INFO(pane.command());
    REQUIRE(pane.started());
    std::string s;

    // The header, and the table once the first report is in.
    bool shown = pane.wait_for([&](const std::string& x) { return table_of(x).pids.size() >= 3; }, &s);
    INFO(s);
    REQUIRE(shown);
    CHECK(contains(s, "memtop  system view  every 1s"));
    CHECK(std::regex_search(
        s, std::regex("Mem [0-9.]+ [KMGT]iB total, [0-9.]+ [KMGT]?i?B used, [0-9.]+ [KMGT]iB available")));
    CHECK(std::regex_search(s, std::regex("memtop [0-9.]+% CPU, [0-9.]+ [KMG]iB resident, 0 probes")));
    CHECK(contains(s, "lost: "));
    Table t = table_of(s);
    CHECK(contains(t.header, "RSS v"));
    const std::vector<int> by_rss = t.pids;
    // Colour: the sorted column's title, in green.
    CHECK(has_sgr(pane.capture(true), {32}));

    // < three times: from RSS over CONTAINER and COMM to PID, ascending.
    pane.text("<<<");
    bool by_pid = pane.wait_for([](const std::string& x) { return contains(table_of(x).header, "PID ^"); }, &s);
    INFO(s);
    REQUIRE(by_pid);
    t = table_of(s);
    CHECK_FALSE(contains(t.header, "RSS v"));
    CHECK(ascending(t.pids));
    CHECK(t.pids != by_rss);
    pane.text("I");
    REQUIRE(pane.wait_for([](const std::string& x) { return contains(table_of(x).header, "PID v"); }, &s));
    CHECK(descending(table_of(s).pids));

    // Filter by the program's name: only its rows are left (other tests
    // may run it too), and the cursor goes onto this one.
    pane.text("/rss_gr");
    REQUIRE(pane.wait_text("filter: rss_gr_", &s));
    pane.keys({"Enter"});
    bool filtered = pane.wait_for(
        [&](const std::string& x) {
            return contains(x, "shown by filter \"rss_gr\"") && !contains(x, "Enter applies");
        },
        &s);
    INFO(s);
    REQUIRE(filtered);
    t = table_of(s);
    CHECK(all_rows_contain(t, "rss_grow_fp"));
    CHECK(row_of(t, pid));
    CHECK(t.pids.size() < by_rss.size());
    REQUIRE(select_row(pane, pid));

    // Esc clears the filter; the cursor stays on the program (the table
    // scrolls to it), also when the table is sorted by RSS again and the
    // program grows past others.
    pane.keys({"Escape"});
    REQUIRE(pane.wait_for([&](const std::string& x) { return table_of(x).pids.size() > t.pids.size(); }, &s));
    CHECK(cursor_pid(pane.capture(true)) == pid);
    pane.text(">>>");
    REQUIRE(pane.wait_for([](const std::string& x) { return contains(table_of(x).header, "RSS v"); }, &s));
    CHECK(cursor_pid(pane.capture(true)) == pid);
    const int before = position_of(table_of(s), pid);
    REQUIRE(before >= 0);
    go({&prog}, prog, "grown");
    bool moved = pane.wait_for(
        [&](const std::string& x) {
            int now = position_of(table_of(x), pid);
            return now >= 0 && now < before;
        },
        &s);
    {
        INFO("row " << before << " before growing\n" << s);
        CHECK(moved);
    }
    CHECK(cursor_pid(pane.capture(true)) == pid);

    // Pause: the indicator shows and the numbers stay while the program
    // shrinks and two reports come; after pause they move again.
    pane.keys({"Space"});
    REQUIRE(pane.wait_text("PAUSED", &s));
    const std::string frozen_row = *row_of(table_of(s), pid);
    const std::string frozen_title = split(s)[0];
    tell({&prog}, prog, "shrink", "shrunk");
    std::this_thread::sleep_for(2500ms);  // two reports at -d 1
    s = pane.capture();
    {
        INFO(s);
        REQUIRE(row_of(table_of(s), pid));
        CHECK(*row_of(table_of(s), pid) == frozen_row);
        CHECK(split(s)[0] == frozen_title);
    }
    pane.keys({"Space"});
    bool thawed = pane.wait_for(
        [&](const std::string& x) {
            const Table t = table_of(x);  // row_of points into it
            const std::string* r = row_of(t, pid);
            return !contains(x, "PAUSED") && r && *r != frozen_row;
        },
        &s);
    {
        INFO("frozen: " << frozen_row << "\n" << s);
        CHECK(thawed);
    }

    // + and - change the interval.
    pane.text("+");
    REQUIRE(pane.wait_text("every 2s", &s));
    pane.text("-");
    REQUIRE(pane.wait_text("every 1s", &s));

    // Help, and any key back.
    pane.text("h");
    REQUIRE(pane.wait_text("live screen keys", &s));
    CHECK(contains(s, "invert the sort order"));
    CHECK(table_of(s).header.empty());
    pane.text("x");
    REQUIRE(pane.wait_for([](const std::string& x) { return !table_of(x).header.empty(); }, &s));

    // q: memtop exits 0, and the final report is left on the terminal.
    pane.text("q");
    CHECK(pane.exit_status() == 0);
    s = pane.capture(false, true);
    CHECK(contains(s, "(final)"));
    end_prog({&prog}, prog);
}

TEST_CASE("live screen: detail view, t starts heap tracing, stacks expand frame by frame", "[bpf][tui]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_TMUX();
    REQUIRE(have_prog("c_sites_fp"));
    Child prog;
    const int pid = start_prog(prog, {prog_path("c_sites_fp"), "--wait"});
    const std::string spid = std::to_string(pid);

    Pane pane(120, 40, "-d 1 --no-color");
    INFO(pane.command());
    REQUIRE(pane.started());
    std::string s;
    REQUIRE(pane.wait_for([](const std::string& x) { return table_of(x).pids.size() >= 3; }, &s));
    // --no-color: no foreground colour anywhere.
    CHECK_FALSE(has_sgr(pane.capture(true), {31, 32, 33, 34, 35, 36, 37}));

    pane.text("/c_sites");
    pane.keys({"Enter"});
    REQUIRE(pane.wait_for(
        [&](const std::string& x) {
            Table t = table_of(x);
            return contains(x, "shown by filter") && row_of(t, pid) && all_rows_contain(t, "c_sites");
        },
        &s));
    REQUIRE(select_row(pane, pid));
    pane.keys({"Enter"});
    bool detail = pane.wait_text("pid " + spid + "  c_sites_fp", &s);
    INFO(s);
    REQUIRE(detail);
    CHECK(contains(s, "not heap-traced (t starts)"));
    CHECK(contains(s, "press t to trace"));
    CHECK(contains(s, "no growth stacks yet"));
    CHECK(std::regex_search(s, std::regex("RSS [0-9.]+ [KMG]iB")));  // the chart's label

    // t attaches to the program as -p would; then it allocates, and the
    // reports have its heap.
    pane.text("t");
    bool attached = pane.wait_text("tracing pid " + spid + " (c_sites_fp): ", &s, kTimeout);
    INFO(s);
    REQUIRE(attached);
    go({&prog}, prog);
    REQUIRE(pane.wait_text("heap-traced (t stops)", &s));
    // Largest first: realloc_grow (5000 B), pvalloc_site (4000), leak_malloc (3 x 1000).
    bool stacks = pane.wait_for(
        [](const std::string& x) {
            return contains(x, "[+] 4.9 KiB in 1 allocation   realloc_grow") &&
                   contains(x, "[+] 2.9 KiB in 3 allocations   leak_malloc");
        },
        &s);
    INFO(s);
    REQUIRE(stacks);
    CHECK(contains(s, "c_sites.c:"));
    CHECK_FALSE(contains(s, "run_sites"));

    // Enter expands the stack under the cursor frame by frame. The cursor
    // stays on its stack across reports: on a busy host a report made while
    // the program was still allocating put it on leak_malloc (then the
    // first), below the larger stacks made after. Home: the first.
    pane.keys({"Home", "Enter"});
    REQUIRE(pane.wait_text("run_sites", &s));
    INFO(s);
    CHECK(std::regex_search(s, std::regex("\\[-\\] 4.9 KiB in 1 allocation   realloc_grow")));
    CHECK(std::regex_search(s, std::regex("#0 +realloc_grow\\+0x[0-9a-f]+  c_sites.c:[0-9]+  \\(c_sites_fp\\)")));
    CHECK(std::regex_search(s, std::regex("#1 +run_sites")));
    CHECK(std::regex_search(s, std::regex("#2 +main")));
    // Down and Right: the next stack opens too; Left folds it again.
    pane.keys({"Down", "Right"});
    REQUIRE(pane.wait_text("#0   pvalloc_site", &s));
    pane.keys({"Left", "Up", "Enter"});
    REQUIRE(pane.wait_for([](const std::string& x) { return !contains(x, "run_sites"); }, &s));

    // t again: no longer reported (the probes stay, as the help says).
    pane.text("t");
    REQUIRE(pane.wait_text("not heap-traced (t starts)", &s));
    CHECK(pane.wait_for([](const std::string& x) { return !contains(x, "realloc_grow"); }, &s));

    pane.keys({"Escape"});
    REQUIRE(pane.wait_for([](const std::string& x) { return !table_of(x).header.empty(); }, &s));
    pane.text("q");
    CHECK(pane.exit_status() == 0);
    end_prog({&prog}, prog);
}

TEST_CASE("live screen with -p: the traced program's heap and its stacks", "[bpf][tui][attach]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_TMUX();
    REQUIRE(have_prog("c_sites_fp"));
    Child prog;
    const int pid = start_prog(prog, {prog_path("c_sites_fp"), "--wait"});
    const std::string spid = std::to_string(pid);

    Pane pane(120, 40, "-d 1 -p " + spid);
    INFO(pane.command());
    REQUIRE(pane.started());
    std::string s;
    REQUIRE(pane.wait_text("memtop  pid " + spid + "  every 1s", &s));
    go({&prog}, prog);
    // Sorted by heap: the program first, with heap and its peak.
    bool row = pane.wait_for(
        [&](const std::string& x) {
            Table t = table_of(x);
            return !t.pids.empty() && t.pids[0] == pid && contains(t.rows[0], "KiB");
        },
        &s);
    INFO(s);
    REQUIRE(row);
    CHECK(contains(table_of(s).header, "HEAP v"));
    CHECK(std::regex_search(s, std::regex("memtop [0-9.]+% CPU, [0-9.]+ [KMG]iB resident, [1-9][0-9]* probes")));
    pane.keys({"Enter"});
    REQUIRE(pane.wait_text("leak_malloc", &s));
    CHECK(contains(s, "heap-traced (t stops)"));
    // o: allocation hotspots; temp_malloc, all freed, shows up.
    CHECK_FALSE(contains(s, "temp_malloc"));
    pane.text("o");
    REQUIRE(pane.wait_text("heap stacks by allocated from the next report", &s));
    REQUIRE(pane.wait_text("Heap stacks, by bytes allocated in all", &s));
    REQUIRE(pane.wait_text("temp_malloc", &s));
    pane.text("q");
    CHECK(pane.exit_status() == 0);
    end_prog({&prog}, prog);
}

// The PYTHON column (--python-objects): a CPython's object-allocator domain,
// pymalloc's blocks, apart from its heap. py_objects.py keeps 99,743 ints of
// 32 bytes each (--keep): 3.0 MiB that never reach malloc.
TEST_CASE("live screen with --python-objects -p: the PYTHON column holds the CPython's objects",
          "[bpf][tui][attach][python]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_TMUX();
    const std::string python = "/usr/bin/python3.11";
    if (access(python.c_str(), X_OK) != 0) {
        if (ci_mode()) FAIL(python << " is missing (tools/deps.txt installs it)");
        WARN("skipped: no " << python);
        return;
    }
    Child prog;
    const int pid = start_prog(prog, {python, progs_src("python/py_objects.py"), "--wait", "--keep"});
    const std::string spid = std::to_string(pid);
    Pane pane(140, 40, "--python-objects --exact -d 1 -p " + spid);
    INFO(pane.command());
    REQUIRE(pane.started());
    std::string s;
    REQUIRE(pane.wait_text("memtop  pid " + spid + "  every 1s", &s));
    go({&prog}, prog);
    // The cell under the PYTHON title (right-aligned, as the title), in bytes.
    auto python_bytes = [](const Table& t, const std::string& row) -> double {
        size_t at = t.header.find("PYTHON");
        if (at == std::string::npos || row.size() < at + 6) return -1;
        const size_t end = at + 6, width = 10;
        std::smatch m;
        const std::string cell = row.substr(end - width, width);
        if (!std::regex_search(cell, m, std::regex("([0-9.]+) (B|KiB|MiB|GiB)"))) return -1;
        const double unit = m[2] == "B" ? 1 : m[2] == "KiB" ? 1024.0 : m[2] == "MiB" ? 1048576.0 : 1073741824.0;
        return std::stod(m[1]) * unit;
    };
    const double ints = (100000 - 257) * 32.0;
    bool shown = pane.wait_for(
        [&](const std::string& x) {
            Table t = table_of(x);
            const std::string* row = row_of(t, pid);
            // One decimal of MiB: within 0.05 MiB of the ints' bytes, or more
            // (the interpreter's own objects).
            return row && python_bytes(t, *row) >= ints - 0.05 * 1048576;
        },
        &s);
    INFO(s);
    REQUIRE(shown);
    Table t = table_of(s);
    CHECK(contains(t.header, "PYTHON"));
    CHECK(contains(t.header, "HEAP"));
    // Not more than the domain holds: the ints and the interpreter's objects.
    CHECK(python_bytes(t, *row_of(t, pid)) < ints + 4 * 1048576);
    pane.text("q");
    CHECK(pane.exit_status() == 0);
    end_prog({&prog}, prog);
}

TEST_CASE("live screen: s saves the last report to a new file memtop report reads", "[bpf][tui][record]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_TMUX();
    REQUIRE(have_prog("c_sites_fp"));
    Child prog;
    const int pid = start_prog(prog, {prog_path("c_sites_fp"), "--wait"});
    const std::string spid = std::to_string(pid);
    char tmpl[] = "/tmp/memtop-save.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const std::string dir = tmpl;
    // memtop runs in dir: the file goes to its working directory.
    Pane pane(160, 40, "-d 0.5 -p " + spid, "cd " + dir + " &&");
    INFO(pane.command());
    REQUIRE(pane.started());
    std::string s;
    REQUIRE(pane.wait_text("memtop  pid " + spid, &s));
    go({&prog}, prog);  // every site has allocated once this returns
    // The screen shows the report with all of the program's heap
    // (C_TOTAL_BYTES, 14.7 KiB): the last report, which s saves, has it.
    char heap_text[32];
    snprintf(heap_text, sizeof heap_text, "%.1f KiB", C_TOTAL_BYTES / 1024.0);
    const std::string heap = heap_text;
    bool shown = pane.wait_for(
        [&](const std::string& x) {
            const Table t = table_of(x);
            const std::string* r = row_of(t, pid);
            return r && contains(*r, heap);
        },
        &s);
    {
        INFO(heap << "\n" << s);
        REQUIRE(shown);
    }
    const std::regex saved("saved to (" + dir + "/memtop-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?\\.gz)");
    auto save = [&](const std::vector<std::string>& before) {
        pane.text("s");
        std::smatch m;
        bool said = pane.wait_for(
            [&](const std::string& x) {
                return std::regex_search(x, m, saved) &&
                       std::find(before.begin(), before.end(), m[1].str()) == before.end();
            },
            &s);
        INFO(s);
        REQUIRE(said);
        std::regex_search(s, m, saved);
        return m[1].str();
    };
    const std::string file = save({});
    struct stat st {};
    REQUIRE(lstat(file.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);  // created exclusively, root's alone
    CHECK(st.st_uid == 0);

    Run rep = run_memtop({memtop_path(), "report", file, "--json"});
    INFO(rep.diag);
    REQUIRE(rep.exit_code == 0);
    CHECK(rep.err_lines.empty());
    REQUIRE(rep.out_lines.size() == 1);
    const json r = json::parse(rep.out_lines[0]);
    ProcStats p = proc_stats(r, pid);
    INFO(describe_stacks(r, pid));
    REQUIRE(p.found);
    CHECK(p.comm == "c_sites_fp");
    CHECK(p.heap_bytes == C_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == C_PEAK_BYTES);
    CHECK(p.allocs_total == C_ALLOCS_TOTAL);
    CHECK(p.frees_total == C_FREES_TOTAL);
    // Its top stacks (-T's): the sites' exact bytes and counts.
    Sum leak = sum_frame0(r, pid, "leak_malloc");
    CHECK(leak.bytes == C_LEAK_MALLOC_BYTES);
    CHECK(leak.allocs == C_LEAK_MALLOC_N);
    Sum grow = sum_frame0(r, pid, "realloc_grow");
    CHECK(grow.bytes == C_GROW_BYTES);
    CHECK(grow.allocs == 1);
    CHECK(sum_frame0(r, pid, "pvalloc_site").bytes == C_PVALLOC_SIZE);
    // The text report reads too, and the file is a one-report recording.
    Run text = run_memtop({memtop_path(), "report", file});
    INFO(text.diag);
    CHECK(text.exit_code == 0);
    bool named = std::any_of(text.out_lines.begin(), text.out_lines.end(),
                             [&](const std::string& l) { return contains(l, "leak_malloc"); });
    CHECK(named);

    // A second s: another new file, the first one left as it was.
    const std::string again = save({file});
    CHECK(again != file);
    struct stat st2 {};
    CHECK(stat(again.c_str(), &st2) == 0);
    CHECK((st2.st_mode & 0777) == 0600);
    struct stat st1 {};
    REQUIRE(stat(file.c_str(), &st1) == 0);
    CHECK(st1.st_size == st.st_size);
    CHECK(st1.st_mtim.tv_nsec == st.st_mtim.tv_nsec);

    pane.text("q");
    CHECK(pane.exit_status() == 0);
    end_prog({&prog}, prog);
    unlink(file.c_str());
    unlink(again.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("live screen: a 40x12 terminal, then a resize, redraw sensibly", "[bpf][tui]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_TMUX();
    Pane pane(40, 12, "-d 1", "NO_COLOR=1");
    INFO(pane.command());
    REQUIRE(pane.started());
    std::string s;
    bool drawn = pane.wait_for([](const std::string& x) { return table_of(x).pids.size() >= 3; }, &s);
    INFO(s);
    REQUIRE(drawn);
    auto lines = split(s);
    CHECK(starts_with(lines[0], " memtop  system view"));
    Table t = table_of(s);
    CHECK(contains(t.header, "RSS v"));
    CHECK_FALSE(contains(t.header, "HEAP"));  // does not fit: left out, not wrapped
    CHECK(t.pids.size() <= 6);
    // NO_COLOR: no foreground colour.
    CHECK_FALSE(has_sgr(pane.capture(true), {31, 32, 33, 34, 35, 36, 37}));
    // The detail view fits too.
    pane.keys({"Enter"});
    REQUIRE(pane.wait_text("Heap stacks", &s));
    pane.keys({"Escape"});
    REQUIRE(pane.wait_for([](const std::string& x) { return !table_of(x).header.empty(); }, &s));

    pane.resize(120, 40);
    bool wide = pane.wait_for(
        [](const std::string& x) {
            Table t = table_of(x);
            auto l = split(x);
            return contains(t.header, "HEAP PEAK") && contains(t.header, "ALLOCS/S") && t.pids.size() > 6 &&
                   l.size() >= 40 && contains(l[39], "q quit");
        },
        &s);
    INFO(s);
    CHECK(wide);
    pane.text("q");
    CHECK(pane.exit_status() == 0);
}

TEST_CASE("no terminal: a pipe gets text reports and no escape codes; -b does too on a terminal", "[bpf][tui][cli]") {
    RT_REQUIRE_ENV();
    {
        Run r = run_memtop({memtop_path(), "-d", "0.5", "-n", "2"});
        INFO(r.diag);
        REQUIRE_FALSE(r.timed_out);
        CHECK(r.exit_code == 0);
        std::string all;
        int reports = 0;
        for (const auto& l : r.out_lines) {
            all += l + "\n";
            reports += starts_with(l, "memtop 20");
        }
        for (const auto& l : r.err_lines) all += l + "\n";
        CHECK(reports == 2);  // -n 2: one interval report, then the final one
        CHECK(contains(all, "(final)"));
        CHECK(contains(all, "PID"));
        CHECK(all.find('\x1b') == std::string::npos);
    }
    {
        Run r = run_memtop({memtop_path(), "--json", "-d", "0.5", "-n", "1"});
        INFO(r.diag);
        REQUIRE_FALSE(r.timed_out);
        CHECK(r.exit_code == 0);
        REQUIRE(r.reports().size() == 1);
        CHECK(r.final_report);
        check_report_shape(r.reports()[0]);
    }
    RT_REQUIRE_TMUX();
    Pane pane(120, 40, "-b -d 0.5 -n 2");
    INFO(pane.command());
    REQUIRE(pane.started());
    CHECK(pane.exit_status() == 0);
    std::string s = pane.capture(true, true);
    INFO(s);
    CHECK(contains(s, "(final)"));
    CHECK_FALSE(contains(s, "memtop  system view"));  // no screen
    CHECK_FALSE(has_sgr(s, {7}));                     // nothing drawn in reverse
}
