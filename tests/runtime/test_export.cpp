// --pprof and --folded at the end of a live run, read back by their real
// consumers' rules: `go tool pprof` (Debian's golang-go) must show, per
// function of the test program, exactly the bytes and counts memtop's JSON
// shows; the folded file must carry each site's exact bytes. Tagged [host]:
// the kernel-matrix VMs have no Go.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"
#include "pprof_tool.h"

using namespace rt;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/memtop-export-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string build_id_of(const std::string& path) {
    Child c;
    std::string error;
    REQUIRE(spawn(c, {"readelf", "-n", path}, false, &error));
    REQUIRE(wait_exit({&c}, c));
    for (const auto& l : c.out_lines)
        if (auto at = l.find("Build ID: "); at != std::string::npos) return l.substr(at + 10);
    return "";
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

}  // namespace

TEST_CASE("--pprof and --folded: go tool pprof and the folded file show exactly the JSON's numbers",
          "[bpf][export][host]") {
    RT_REQUIRE_ENV();
    const std::string prog = "c_sites_fp";
    if (!have_prog(prog)) return;
    auto go = go_binary();
    if (!go) {
        if (ci_mode()) FAIL("go tool pprof is needed (golang-go, tools/deps.txt)");
        WARN("skipped: no go (golang-go) for go tool pprof");
        return;
    }
    TempDir dir;
    const std::string prof = dir.path + "/heap.pb.gz", folded = dir.path + "/heap.folded";
    Run r = run_memtop_cmd({prog_path(prog)}, {"--pprof", prof, "--folded", folded});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, prog);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));

    Raw raw = parse_raw(pprof(*go, dir.path, {"-raw", prof}));
    // Every node (none dropped as small), space in plain bytes, this
    // process's samples by their pid label.
    auto top_of = [&](const std::string& index) {
        std::vector<std::string> args = {"-top",
                                         "-nodecount=1000",
                                         "-nodefraction=0",
                                         "-edgefraction=0",
                                         "-sample_index=" + index,
                                         "-tagfocus=pid=" + std::to_string(p.pid),
                                         prof};
        if (index.find("space") != std::string::npos) args.insert(args.begin(), "-unit=byte");
        return parse_top(pprof(*go, dir.path, args));
    };
    auto inuse_space = top_of("inuse_space"), inuse_objects = top_of("inuse_objects");
    auto alloc_space = top_of("alloc_space"), alloc_objects = top_of("alloc_objects");
    for (const expect::Site& site : expect::c_sites) {
        if (site.bytes == 0) continue;  // the JSON lists stacks with outstanding bytes only
        INFO("site " << site.function);
        Sum s = sum_frame0(rep, p.pid, site.function);
        REQUIRE(s.stacks > 0);
        const auto& v = raw.by_leaf[site.function];
        CHECK(v[2] == s.allocs);
        CHECK(v[3] == s.bytes);
        CHECK(inuse_space[site.function] == s.bytes);
        CHECK(inuse_objects[site.function] == s.allocs);
        CHECK(s.bytes == site.bytes);
        // The JSON leaves out stacks whose blocks were all freed; where a
        // site has none, its totals are the profile's alloc_* too.
        if (!site.totals_equal) continue;
        CHECK(v[0] == s.allocs_total);
        CHECK(v[1] == s.alloc_bytes_total);
        CHECK(alloc_space[site.function] == s.alloc_bytes_total);
        CHECK(alloc_objects[site.function] == s.allocs_total);
    }
    // Every stack, not only those with bytes outstanding: temp_malloc
    // freed all it allocated, so only the profile's alloc_* show it.
    // realloc_grow's and realloc_shrink's first blocks were freed by their
    // reallocs: the profile counts every block each site allocated.
    using Values = std::array<long long, 4>;
    CHECK(raw.by_leaf["temp_malloc"] == Values{C_TEMP_N, C_TEMP_N * C_TEMP_SIZE, 0, 0});
    CHECK(alloc_space["temp_malloc"] == C_TEMP_N * C_TEMP_SIZE);
    CHECK(alloc_objects["temp_malloc"] == C_TEMP_N);
    CHECK(raw.by_leaf["realloc_grow"] == Values{3, C_GROW_SIZE1 + C_GROW_SIZE2 + C_GROW_SIZE3, 1, C_GROW_BYTES});
    CHECK(alloc_space["realloc_grow"] == C_GROW_SIZE1 + C_GROW_SIZE2 + C_GROW_SIZE3);
    CHECK(raw.by_leaf["realloc_shrink"] == Values{2, C_SHRINK_SIZE1 + C_SHRINK_SIZE2, 1, C_SHRINK_BYTES});

    bool pid_label = false, comm_label = false;
    for (const auto& l : raw.labels) {
        pid_label |= l.find("pid:[" + std::to_string(p.pid) + "]") != std::string::npos;
        comm_label |= l.find("comm:[" + prog + "]") != std::string::npos;
    }
    CHECK(pid_label);
    CHECK(comm_label);
    // The program's mapping carries its build-id, as readelf reads it.
    const std::string id = build_id_of(prog_path(prog));
    REQUIRE(id.size() == 40);
    bool mapped = false;
    for (const auto& m : raw.mappings) mapped |= m.find(prog) != std::string::npos && m.find(id) != std::string::npos;
    INFO("mappings:\n"
         << [&] {
                std::string s;
                for (const auto& m : raw.mappings) s += m + "\n";
                return s;
            }());
    CHECK(mapped);

    // Folded: "comm (pid);...;main;run_sites;SITE BYTES", summed per site.
    std::map<std::string, long long> folded_by_site;
    long long folded_total = 0;
    const std::string root = prog + " (" + std::to_string(p.pid) + ");";
    for (const auto& l : read_lines(folded)) {
        if (l.rfind(root, 0) != 0) continue;
        auto sp = l.rfind(' ');
        REQUIRE(sp != std::string::npos);
        long long bytes = std::stoll(l.substr(sp + 1));
        std::string frames = l.substr(0, sp);
        std::string leaf = frames.substr(frames.rfind(';') + 1);
        if (frames.find(";main;run_sites;" + leaf) != std::string::npos) folded_by_site[leaf] += bytes;
        folded_total += bytes;
    }
    for (const expect::Site& site : expect::c_sites) {
        INFO("site " << site.function);
        CHECK(folded_by_site[site.function] == site.bytes);
    }
    CHECK(folded_total == p.heap_bytes);
}

TEST_CASE("--pprof into a missing directory fails at once with one line", "[bpf][export][host]") {
    Run r = run_memtop({memtop_path(), "--pprof", "/nonexistent-dir/heap.pb.gz", "--", "true"});
    INFO(r.diag);
    CHECK(r.exit_code == 2);
    REQUIRE(r.err_lines.size() == 1);
    CHECK(r.err_lines[0].find("--pprof /nonexistent-dir/heap.pb.gz: cannot write in /nonexistent-dir") !=
          std::string::npos);
}

namespace {
// Bytes of the folded file's lines of process `pid` (each line "comm (PID);frames BYTES").
long long folded_bytes_of(const std::string& path, const std::string& comm, int pid) {
    const std::string prefix = comm + " (" + std::to_string(pid) + ");";
    long long total = 0;
    for (const auto& l : read_lines(path))
        if (l.rfind(prefix, 0) == 0) total += std::stoll(l.substr(l.rfind(' ') + 1));
    return total;
}
}  // namespace

// The files written at the end of a -f run are its summary: a child that
// ended before the final report (listed by an interval report then) has
// every stack in them, and `memtop report` of the run's recording shows
// the same summary and writes the same file.
TEST_CASE("-f: the files written at the end, and memtop report, have the stacks of a child that ended before",
          "[bpf][export][cmd][follow][record]") {
    RT_REQUIRE_ENV();
    const std::string prog = "c_sites_fp";
    if (!have_prog(prog)) return;
    TempDir dir;
    const std::string folded = dir.path + "/live.folded", rec = dir.path + "/run.gz",
                      replayed = dir.path + "/replayed.folded";
    Child memtop;
    std::vector<std::string> argv = memtop_base_args();
    for (const std::string& a :
         {std::string("--folded"), folded, std::string("--record"), rec, std::string("-f"), std::string("--"),
          std::string("/bin/sh"), std::string("-c"), std::string("\"$0\"; read x; exit 0"), prog_path(prog)})
        argv.push_back(a);
    start_memtop(memtop, argv, true);
    std::vector<Child*> all = {&memtop};
    wait_memtop_ready(all, memtop);
    int child = 0;
    size_t seen = 0;
    std::string last = "no report";
    // sh waits on its stdin: the child's end is in an interval report.
    auto ended = report_ended(all, memtop, seen, prog, child, &last, 30);
    INFO(last.substr(0, 2000));
    REQUIRE(ended);
    CHECK_FALSE(ended->value("final", false));
    memtop.close_stdin();
    Run r = stop_memtop(all, memtop, 0);
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);

    // Every site of the child, exactly: C_TOTAL_BYTES outstanding at its end.
    CHECK(folded_bytes_of(folded, prog, child) == C_TOTAL_BYTES);

    Run rep = run_memtop({memtop_path(), "report", rec, "--json", "--folded", replayed});
    INFO(rep.diag);
    REQUIRE(rep.exit_code == 0);
    REQUIRE(rep.final_report);
    bool listed = false;
    for (const auto& p : (*rep.final_report)["processes"])
        if (p["pid"] == child) {
            listed = true;
            CHECK(p["reported_before"] == true);
            CHECK(p["heap_bytes"] == C_TOTAL_BYTES);
        }
    CHECK(listed);
    CHECK(folded_bytes_of(replayed, prog, child) == C_TOTAL_BYTES);

    // --diff BASE compares two runs' summaries: against a run of the shell
    // alone, the child's sites are the change, all of them.
    const std::string base = dir.path + "/base.gz";
    Run b = run_memtop_cmd({"/bin/sh", "-c", "exit 0"}, {"-f", "--record", base});
    INFO(b.diag);
    REQUIRE(b.exit_code == 0);
    Run d = run_memtop({memtop_path(), "report", rec, "--json", "--diff", base});
    INFO(d.diag);
    REQUIRE(d.exit_code == 0);
    REQUIRE(d.out_lines.size() == 1);
    const json diff = json::parse(d.out_lines[0]);
    long long child_bytes = 0;
    for (const auto& st : diff["stacks"])
        if (st["comm"] == prog) child_bytes += st["bytes"].get<long long>();
    CHECK(child_bytes == C_TOTAL_BYTES);
}
