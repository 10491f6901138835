// memtop report FILE --at / --peak / --diff-from TIME / --diff BASE, on
// recordings of leak_steps (tests/progs/leak_steps.c): a heap that grows at
// one site (grow_leak) between two checkpoints. --at the checkpoint shows
// the steady heap, --peak the leak's; a moment the recording does not hold
// is one line and status 2. The diff shows exactly that growth at that
// site and nothing else, in text, JSON and a pprof profile that `go tool
// pprof` reads back (tagged [host]: the VMs have no Go). --plot OUT.svg of
// such a recording is read by a real consumer: rsvg-convert (Debian's
// librsvg2-bin) renders it to a PNG without error, the PNG has the line's
// and the peak's colour where the SVG puts them, and the SVG's numbers are
// the recording's (tagged [host]: the VMs have no librsvg).
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <regex>

#include <catch2/catch.hpp>

#include "browser.h"
#include "harness.h"
#include "leak_steps.h"
#include "png_read.h"
#include "pprof_tool.h"

using namespace rt;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/memtop-diff-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool have_rsvg() {
    return std::system("command -v rsvg-convert >/dev/null 2>&1") == 0;
}

// RFC 3339 with nanoseconds, as --at and --diff-from take it.
std::string rfc3339_ns(std::chrono::system_clock::time_point t) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    std::time_t s = ns / 1000000000;
    std::tm tm;
    gmtime_r(&s, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(ns % 1000000000));
    return buf;
}

Run report(std::vector<std::string> args) {
    args.insert(args.begin(), {memtop_path(), "report"});
    return run_memtop(args);
}

// The diff's JSON (one line) of a run that must succeed.
json diff_json(const Run& r) {
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.out_lines.size() == 1);
    return json::parse(r.out_lines[0]);
}

// Exactly grow_leak's growth, and nothing else outstanding.
void check_leak_only(const json& d, const std::string& comm) {
    INFO(d.dump(1));
    CHECK(d["total"]["bytes"] == LS_LEAK_BYTES);
    CHECK(d["total"]["allocs"] == LS_LEAK_N);
    REQUIRE(d["stacks"].size() == 1);
    const json& s = d["stacks"][0];
    CHECK(s["comm"] == comm);
    CHECK(s["bytes"] == LS_LEAK_BYTES);
    CHECK(s["allocs"] == LS_LEAK_N);
    CHECK(s["alloc_bytes_total"] == LS_LEAK_BYTES);
    CHECK(s["allocs_total"] == LS_LEAK_N);
    CHECK(s["base"]["bytes"] == 0);
    CHECK(s["new"]["bytes"] == LS_LEAK_BYTES);
    REQUIRE_FALSE(s["frames"].empty());
    CHECK(fn_is(s["frames"][0], "grow_leak"));
    CHECK(s["frames"][0]["line"] == marker_line("leak_steps.c", "grow_leak"));
    // steady_temp ran again (from another line of main): it allocated and
    // freed, nothing outstanding.
    CHECK(d["churn_stacks"] == 1);
}

// go tool pprof reads the diff profile: grow_leak's exact bytes and
// counts, steady_temp's second round in alloc_* only, nothing else.
void check_pprof(const std::string& go, const std::string& dir, const std::string& prof) {
    Raw raw = parse_raw(pprof(go, dir, {"-raw", prof}));
    using Values = std::array<long long, 4>;
    CHECK(raw.by_leaf["grow_leak"] == Values{LS_LEAK_N, LS_LEAK_BYTES, LS_LEAK_N, LS_LEAK_BYTES});
    CHECK(raw.by_leaf["steady_temp"] == Values{LS_TEMP_N, LS_TEMP_N * LS_TEMP_SIZE, 0, 0});
    for (const auto& [fn, v] : raw.by_leaf) {
        INFO("leaf " << fn);
        if (fn != "grow_leak" && fn != "steady_temp") CHECK(v == Values{0, 0, 0, 0});
    }
    auto top = parse_top(pprof(go, dir,
                               {"-unit=byte", "-top", "-nodecount=1000", "-nodefraction=0", "-edgefraction=0",
                                "-sample_index=inuse_space", prof}));
    CHECK(top["grow_leak"] == LS_LEAK_BYTES);
    for (const auto& [fn, v] : top) {
        INFO("top " << fn);
        if (fn != "grow_leak") CHECK(v == 0);
    }
}

// A recording of `leak_steps --wait` under `memtop -p`: step 1, a report
// showing it, the checkpoint, step 2 (the leak), a report showing it and
// one more (a flat end), then SIGINT.
struct TwoSteps {
    int pid = 0;
    std::chrono::system_clock::time_point checkpoint;
    // After a report showed the leak, before the last two reports.
    std::chrono::system_clock::time_point after_leak;
};

TwoSteps record_two_steps(const std::string& prog, const std::string& file) {
    TwoSteps out;
    Child p, memtop;
    out.pid = start_prog(p, {prog_path(prog), "--wait"});
    const int pid = out.pid;
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--record", file, "--record-interval", "0.05"});
    start_memtop(memtop, argv);
    wait_tracing({&p, &memtop}, memtop, {pid});
    go({&p, &memtop}, p);
    size_t seen = 0;
    REQUIRE(report_until({&p, &memtop}, memtop, seen,
                         [&](const json& r) { return proc_stats(r, pid).heap_bytes == LS_KEEP_BYTES; }));
    // Every report made before this moment shows step 1 only (step 2 has
    // not been asked for): the checkpoint.
    out.checkpoint = std::chrono::system_clock::now();
    tell({&p, &memtop}, p, "go", "leaked");
    REQUIRE(report_until({&p, &memtop}, memtop, seen, [&](const json& r) {
        return proc_stats(r, pid).heap_bytes == LS_KEEP_BYTES + LS_LEAK_BYTES;
    }));
    out.after_leak = std::chrono::system_clock::now();
    REQUIRE(next_report({&p, &memtop}, memtop, seen));
    Run live = stop_memtop({&p, &memtop}, memtop, SIGINT);
    INFO(live.diag);
    REQUIRE(live.exit_code == 0);
    CHECK(end_prog({&p}, p) == 0);
    return out;
}

}  // namespace

TEST_CASE("--at and --peak choose a recording's reports; a moment it does not hold is one line",
          "[bpf][record][moments]") {
    RT_REQUIRE_ENV();
    const std::string prog = "leak_steps_fp";
    if (!have_prog(prog)) return;
    TempDir dir;
    const std::string file = dir.path + "/run.gz";
    const TwoSteps run = record_two_steps(prog, file);
    const int pid = run.pid;
    const auto checkpoint = run.checkpoint;
    const std::string at = rfc3339_ns(checkpoint);
    INFO("checkpoint " << at);

    // --at the checkpoint: step 1's heap; --peak: the last report (the
    // heap only grew), and the moment chosen is said.
    Run at_run = report({file, "--at", at, "--json"});
    INFO(at_run.diag);
    REQUIRE(at_run.exit_code == 0);
    REQUIRE(at_run.out_lines.size() == 1);
    CHECK(proc_stats(json::parse(at_run.out_lines[0]), pid).heap_bytes == LS_KEEP_BYTES);
    REQUIRE(at_run.err_lines.size() == 1);
    CHECK(at_run.err_lines[0].find("memtop: --at ") == 0);
    CHECK(at_run.err_lines[0].find("showing report") != std::string::npos);

    Run peak = report({file, "--peak", std::to_string(pid), "--json"});
    INFO(peak.diag);
    REQUIRE(peak.exit_code == 0);
    REQUIRE(peak.out_lines.size() == 1);
    CHECK(proc_stats(json::parse(peak.out_lines[0]), pid).heap_bytes == LS_KEEP_BYTES + LS_LEAK_BYTES);
    REQUIRE(peak.err_lines.size() == 1);
    CHECK(peak.err_lines[0].find("the peak heap of pid " + std::to_string(pid)) != std::string::npos);

    // Bad input: one line, a non-zero exit.
    auto refused = [&](std::vector<std::string> args, const std::string& says) {
        Run r = report(args);
        INFO(r.diag);
        CHECK(r.exit_code == 2);
        CHECK(r.out_lines.empty());
        REQUIRE(r.err_lines.size() == 1);
        CHECK(r.err_lines[0].find(says) != std::string::npos);
    };
    refused({file, "--at", "86400"}, "--at 86400: after the end of " + file);
    refused({file, "--peak", "999999"}, "--peak 999999: " + file + " holds no heap of pid 999999");
    refused({file, "--at", "soon"}, "--at soon: not a time");
}

TEST_CASE("--diff-from TIME: two checkpoints of one recording differ by exactly the leak",
          "[bpf][record][diff][host]") {
    RT_REQUIRE_ENV();
    const std::string prog = "leak_steps_fp";
    if (!have_prog(prog)) return;
    auto gobin = go_binary();
    if (!gobin) {
        if (ci_mode()) FAIL("go tool pprof is needed (golang-go, tools/deps.txt)");
        WARN("skipped: no go (golang-go) for go tool pprof");
        return;
    }
    TempDir dir;
    const std::string file = dir.path + "/run.gz";
    const TwoSteps run = record_two_steps(prog, file);
    const int pid = run.pid;
    const auto checkpoint = run.checkpoint;
    const std::string at = rfc3339_ns(checkpoint);
    INFO("checkpoint " << at);
    check_leak_only(diff_json(report({file, "--diff-from", at, "--json"})), prog);

    Run text = report({file, "--diff-from", at});
    INFO(text.diag);
    CHECK(text.exit_code == 0);
    std::string all;
    for (const auto& l : text.out_lines) all += l + "\n";
    CHECK(all.find("#1  " + prog + " (pid " + std::to_string(pid) +
                   "): +41.0 KiB outstanding (42000 B, 0 B -> 41.0 KiB) "
                   "in +6 allocations") != std::string::npos);
    CHECK(all.find("#2") == std::string::npos);
    CHECK(all.find("grow_leak (" + prog +
                   ")  leak_steps.c:" + std::to_string(marker_line("leak_steps.c", "grow_leak"))) != std::string::npos);

    const std::string prof = dir.path + "/diff.pb.gz";
    Run pp = report({file, "--diff-from", at, "--pprof", prof});
    INFO(pp.diag);
    REQUIRE(pp.exit_code == 0);
    check_pprof(*gobin, dir.path, prof);

    // Bad input: one line, a non-zero exit.
    auto refused = [&](std::vector<std::string> args, const std::string& says) {
        Run r = report(args);
        INFO(r.diag);
        CHECK(r.exit_code == 2);
        CHECK(r.out_lines.empty());
        REQUIRE(r.err_lines.size() == 1);
        CHECK(r.err_lines[0].find(says) != std::string::npos);
    };
    refused({file, "--diff", "/etc/passwd"}, "not a memtop recording");
    refused({file, "--diff-from", "yesterday"}, "--diff-from yesterday: not a time");
    refused({file, "--diff-from", "86400"}, "--diff-from 86400: after the end of " + file);
    refused({file, "--diff-from", "0", "--folded", dir.path + "/f"}, "--folded: not with a diff");
}

TEST_CASE("report --diff-from TIME --at TIME --html: chromium opens on one moment minus another, exactly the leak",
          "[bpf][record][diff][html][host]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_BROWSER();
    const std::string prog = "leak_steps_fp";
    if (!have_prog(prog)) return;
    TempDir dir;
    const std::string file = dir.path + "/run.gz", page = dir.path + "/diff.html";
    const TwoSteps run = record_two_steps(prog, file);
    // Two moments inside the run: the report at or before the checkpoint
    // (step 1 only) and the first to show the leak (a flat report follows it).
    const std::string from = rfc3339_ns(run.checkpoint), at = rfc3339_ns(run.after_leak);
    INFO("from " << from << " at " << at);
    const json d = diff_json(report({file, "--diff-from", from, "--at", at, "--json", "--html", page}));
    check_leak_only(d, prog);
    // Which reports the diff took: "FILE, report N of M, made at ...".
    auto number = [](const json& side) {
        std::smatch m;
        const std::string s = side.get<std::string>();
        REQUIRE(std::regex_search(s, m, std::regex(", report ([0-9]+) of ([0-9]+),")));
        return std::make_pair(std::stoi(m[1]), std::stoi(m[2]));
    };
    const auto now = number(d["diff"]["new"]), base = number(d["diff"]["base"]);
    INFO(d["diff"].dump());
    CHECK(now.first < now.second);  // not the last report
    CHECK(base.first < now.first);

    json seen = look_at(page, "html-diff", "grow_leak,steady_keep,steady_temp");
    INFO(seen.dump(1));
    CHECK(seen["errors"].empty());
    CHECK(seen["requests"].empty());
    // The page opened on those two reports (moments count from 0).
    CHECK(seen["view"]["moment"] == std::to_string(now.first - 1));
    CHECK(seen["view"]["base"] == std::to_string(base.first - 1));
    CHECK(seen["view"]["note"].get<std::string>().find("Minus report " + std::to_string(base.first)) !=
          std::string::npos);
    CHECK(seen["moments"] == now.second);
    // The flame graph holds the growth only: grow_leak's exact bytes and
    // allocations, in its frames, its tooltip and the top table; the
    // steady heap (unchanged) is not drawn.
    const json& leak = seen["sites"]["grow_leak"];
    CHECK(leak["bytes"] == LS_LEAK_BYTES);
    CHECK(leak["allocs"] == LS_LEAK_N);
    CHECK(leak["at"].get<std::string>().find(
              "leak_steps.c:" + std::to_string(marker_line("leak_steps.c", "grow_leak"))) != std::string::npos);
    CHECK(leak["tooltip"].get<std::string>().find("bytes: 42,000 (") != std::string::npos);
    long long table = 0;
    for (const auto& v : leak["table"]) table += v.get<long long>();
    CHECK(table == LS_LEAK_BYTES);
    CHECK(seen["sites"]["steady_keep"]["frames"] == 0);
    CHECK(seen["sites"]["steady_temp"]["frames"] == 0);
    CHECK(seen["flame"]["ink"].get<long>() > 1000);
    // Allocated in between: the leak, and steady_temp's second round.
    CHECK(seen["alloc"]["grow_leak"] == json::array({LS_LEAK_BYTES, LS_LEAK_N}));
    CHECK(seen["alloc"]["steady_temp"] == json::array({LS_TEMP_N * LS_TEMP_SIZE, LS_TEMP_N}));
    CHECK(seen["alloc"]["steady_keep"] == json::array({0, 0}));
}

TEST_CASE("report NEW --diff BASE --html: chromium shows another recording's difference, exactly the leak",
          "[bpf][record][diff][html][host]") {
    RT_REQUIRE_ENV();
    RT_REQUIRE_BROWSER();
    const std::string prog = "leak_steps_fp";
    if (!have_prog(prog)) return;
    TempDir dir;
    const std::string base = dir.path + "/base.gz", now = dir.path + "/new.gz", page = dir.path + "/diff.html";
    Run b = run_memtop_cmd({prog_path(prog)}, {"--record", base});
    INFO(b.diag);
    REQUIRE(b.exit_code == 0);
    Run n = run_memtop_cmd({prog_path(prog), "--leak"}, {"--record", now});
    INFO(n.diag);
    REQUIRE(n.exit_code == 0);
    // The diff printed, and the page written, in one run.
    const json d = diff_json(report({now, "--diff", base, "--json", "--html", page}));
    check_leak_only(d, prog);

    json seen = look_at(page, "html-diff-base", "grow_leak,steady_keep,steady_temp");
    INFO(seen.dump(1));
    CHECK(seen["errors"].empty());
    CHECK(seen["requests"].empty());
    // The page opened on NEW's last report minus BASE's, named as the
    // text diff names it.
    CHECK(seen["view"]["moment"] == std::to_string(seen["moments"].get<int>() - 1));
    CHECK(seen["view"]["base"] == "diff");
    CHECK(seen["view"]["note"].get<std::string>().find("Minus " + d["diff"]["base"].get<std::string>()) !=
          std::string::npos);
    CHECK(seen["tables"]["summary"].get<std::string>().find(
              "Outstanding heap: +41.0 KiB (42000 B) in +6 allocations") != std::string::npos);
    // The flame graph holds the growth only: grow_leak's exact bytes and
    // allocations, in its frames, its tooltip and the top table; the
    // steady heap (the same in both runs) is not drawn.
    const json& leak = seen["sites"]["grow_leak"];
    CHECK(leak["bytes"] == LS_LEAK_BYTES);
    CHECK(leak["allocs"] == LS_LEAK_N);
    CHECK(leak["at"].get<std::string>().find(
              "leak_steps.c:" + std::to_string(marker_line("leak_steps.c", "grow_leak"))) != std::string::npos);
    CHECK(leak["tooltip"].get<std::string>().find("bytes: 42,000 (") != std::string::npos);
    long long table = 0;
    for (const auto& v : leak["table"]) table += v.get<long long>();
    CHECK(table == LS_LEAK_BYTES);
    CHECK(seen["sites"]["steady_keep"]["frames"] == 0);
    CHECK(seen["sites"]["steady_temp"]["frames"] == 0);
    CHECK(seen["flame"]["ink"].get<long>() > 1000);
    // Allocated in all, NEW minus BASE: the leak, and steady_temp's second round.
    CHECK(seen["alloc"]["grow_leak"] == json::array({LS_LEAK_BYTES, LS_LEAK_N}));
    CHECK(seen["alloc"]["steady_temp"] == json::array({LS_TEMP_N * LS_TEMP_SIZE, LS_TEMP_N}));
    CHECK(seen["alloc"]["steady_keep"] == json::array({0, 0}));
}

TEST_CASE("--diff BASE: two runs (other pids, other addresses) differ by exactly the leak",
          "[bpf][record][diff][host]") {
    RT_REQUIRE_ENV();
    const std::string prog = "leak_steps_fp";
    if (!have_prog(prog)) return;
    auto gobin = go_binary();
    if (!gobin) {
        if (ci_mode()) FAIL("go tool pprof is needed (golang-go, tools/deps.txt)");
        WARN("skipped: no go (golang-go) for go tool pprof");
        return;
    }
    TempDir dir;
    const std::string base = dir.path + "/base.gz", now = dir.path + "/new.gz", prof = dir.path + "/diff.pb.gz";
    Run b = run_memtop_cmd({prog_path(prog)}, {"--record", base});
    INFO(b.diag);
    REQUIRE(b.exit_code == 0);
    Run n = run_memtop_cmd({prog_path(prog), "--leak"}, {"--record", now});
    INFO(n.diag);
    REQUIRE(n.exit_code == 0);

    check_leak_only(diff_json(report({now, "--diff", base, "--json", "--pprof", prof})), prog);
    check_pprof(*gobin, dir.path, prof);
    // The other way round: the leak as a shrink, first.
    json back = diff_json(report({base, "--diff", now, "--json"}));
    REQUIRE(back["stacks"].size() == 1);
    CHECK(back["stacks"][0]["bytes"] == -LS_LEAK_BYTES);
    CHECK(back["stacks"][0]["allocs"] == -LS_LEAK_N);
}

TEST_CASE("--plot OUT.svg: rsvg-convert renders the recording's heap line and its peak", "[bpf][record][plot][host]") {
    RT_REQUIRE_ENV();
    const std::string prog = "leak_steps_fp";
    if (!have_prog(prog)) return;
    if (!have_rsvg()) {
        if (ci_mode()) FAIL("rsvg-convert is needed (librsvg2-bin, tools/deps.txt)");
        WARN("skipped: no rsvg-convert (librsvg2-bin)");
        return;
    }
    TempDir tmp;
    const std::string dir = tmp.path, file = dir + "/run.gz", svg = dir + "/plot.svg", png = dir + "/plot.png";
    const TwoSteps run = record_two_steps(prog, file);
    const int pid = run.pid;

    Run r = run_memtop({memtop_path(), "report", file, "--plot", svg});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    const std::string text = slurp(svg);
    INFO(text.substr(0, 4000));

    // The heap line's numbers: the recording's, ending at the final heap.
    std::smatch m;
    REQUIRE(std::regex_search(text, m,
                              std::regex("<polyline class=\"heap\" data-pid=\"" + std::to_string(pid) +
                                         "\" data-values=\"([^\"]*)\"[^>]*points=\"([^\"]*)\"")));
    const std::string values = m[1], points = m[2];
    std::vector<long long> bytes;
    std::regex v(":([0-9]+)");
    for (auto it = std::sregex_iterator(values.begin(), values.end(), v); it != std::sregex_iterator(); ++it)
        bytes.push_back(std::stoll((*it)[1]));
    REQUIRE_FALSE(bytes.empty());
    CHECK(bytes.back() == LS_KEEP_BYTES + LS_LEAK_BYTES);
    long long top = 0;
    for (long long b : bytes) {
        top = std::max(top, b);
        // At most one steady_temp block in flight on top of what is kept.
        CHECK(b <= LS_KEEP_BYTES + LS_LEAK_BYTES + LS_TEMP_SIZE);
    }
    CHECK(top >= LS_KEEP_BYTES + LS_LEAK_BYTES);
    CHECK(std::find(bytes.begin(), bytes.end(), LS_KEEP_BYTES) != bytes.end());  // step 1, before the leak
    // The peak dot: at the highest value, labelled with its exact bytes.
    REQUIRE(std::regex_search(text, m,
                              std::regex("<circle class=\"peak\" data-pid=\"" + std::to_string(pid) +
                                         "\" data-bytes=\"([0-9]+)\" cx=\"([0-9.]+)\" cy=\"([0-9.]+)\"")));
    CHECK(std::stoll(m[1]) == top);
    const double cx = std::stod(m[2]), cy = std::stod(m[3]);
    CHECK(text.find("peak heap " + std::to_string(top) + " B") != std::string::npos);

    // A real consumer renders it.
    Run conv = run_memtop({"rsvg-convert", "-o", png, svg});
    INFO(conv.diag);
    REQUIRE(conv.exit_code == 0);
    CHECK(conv.err_lines.empty());
    std::string error;
    auto img = read_png(png, &error);
    INFO(error);
    REQUIRE(img);
    CHECK(img->width == 1000);
    CHECK(img->height == 500);
    int px[3];
    // The first process's colour (#1f77b4) at the peak dot's centre.
    img->rgb(int(cx), int(cy), px);
    CHECK(std::abs(px[0] - 0x1f) <= 8);
    CHECK(std::abs(px[1] - 0x77) <= 8);
    CHECK(std::abs(px[2] - 0xb4) <= 8);
    // The line: the last point's pixel has the colour, and so do many
    // pixels in all; the plot's top left corner (above every value) is white.
    auto last_comma = points.rfind(',');
    auto last_space = points.rfind(' ', last_comma);
    const double lx = std::stod(points.substr(last_space + 1, last_comma - last_space - 1));
    const double ly = std::stod(points.substr(last_comma + 1));
    img->rgb(int(lx) - 1, int(ly), px);
    CHECK(px[2] > px[0] + 60);  // blue, not white or grey
    int blue = 0;
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++) {
            img->rgb(x, y, px);
            blue += std::abs(px[0] - 0x1f) <= 8 && std::abs(px[1] - 0x77) <= 8 && std::abs(px[2] - 0xb4) <= 8;
        }
    CHECK(blue > 200);
    img->rgb(95, 45, px);
    CHECK((px[0] == 255 && px[1] == 255 && px[2] == 255));

    // Nowhere to write it: one line, status 2, before reading anything.
    Run bad = run_memtop({memtop_path(), "report", file, "--plot", "/nonexistent-dir/p.svg"});
    INFO(bad.diag);
    CHECK(bad.exit_code == 2);
    CHECK(bad.out_lines.empty());
    REQUIRE(bad.err_lines.size() == 1);
    CHECK(bad.err_lines[0].find("--plot /nonexistent-dir/p.svg: cannot write in /nonexistent-dir") !=
          std::string::npos);
}
