// --record FILE and `memtop report FILE`: the recording shows exactly what
// the live run showed, even when memtop was killed or the file was cut.
#include <signal.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

std::string temp_file(const char* name) {
    return "/tmp/memtop-record-" + std::to_string(getpid()) + "-" + name;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

long long proc_status_bytes(int pid, const std::string& field) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
    return -1;
}

// Every record of a recording, as written (zlib reads the gzip stream).
std::vector<json> records_of(const std::string& file) {
    std::vector<json> out;
    gzFile g = gzopen(file.c_str(), "rb");
    if (!g) return out;
    std::string text;
    char buf[65536];
    for (int n; (n = gzread(g, buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
    gzclose(g);
    size_t pos = 0;
    for (size_t end; (end = text.find('\n', pos)) != std::string::npos; pos = end + 1)
        out.push_back(json::parse(text.substr(pos, end - pos)));
    return out;
}

Run report_of(const std::string& file) {
    return run_memtop({memtop_path(), "report", file, "--json"});
}

}  // namespace

TEST_CASE("memtop report FILE prints exactly the live run's final JSON; a cut file says so in one line",
          "[bpf][record]") {
    RT_REQUIRE_ENV();
    const std::string file = temp_file("cmd.gz"), cut = temp_file("cut.gz");
    Run live = run_memtop_cmd({prog_path("c_sites_fp")}, {"--record", file});
    INFO(live.diag);
    REQUIRE(live.exit_code == 0);
    REQUIRE_FALSE(live.out_lines.empty());
    const std::string final_line = live.out_lines.back();
    REQUIRE(json::parse(final_line).value("final", false));

    Run rep = report_of(file);
    INFO(rep.diag);
    CHECK(rep.exit_code == 0);
    CHECK(rep.err_lines.empty());
    REQUIRE(rep.out_lines.size() == 1);
    CHECK(rep.out_lines[0] == final_line);

    // Without the stream's end (its last bytes): every record still reads.
    std::string data = slurp(file);
    REQUIRE(data.size() > 16);
    std::ofstream(cut, std::ios::binary) << data.substr(0, data.size() - 6);
    Run part = report_of(cut);
    INFO(part.diag);
    CHECK(part.exit_code == 1);
    REQUIRE(part.err_lines.size() == 1);
    CHECK(part.err_lines[0].find("truncated") != std::string::npos);
    REQUIRE(part.out_lines.size() == 1);
    CHECK(part.out_lines[0] == final_line);
    unlink(file.c_str());
    unlink(cut.c_str());
}

TEST_CASE("a recording of a memtop killed by SIGKILL reads up to its last report", "[bpf][record][failure]") {
    RT_REQUIRE_ENV();
    const std::string file = temp_file("killed.gz");
    Child prog, memtop;
    const int pid = start_prog(prog, {prog_path("c_sites_fp"), "--wait"});
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--record", file, "--record-interval", "0.05"});
    start_memtop(memtop, argv);
    wait_tracing({&prog, &memtop}, memtop, {pid});
    go({&prog, &memtop}, prog);
    size_t seen = 0;
    auto done = report_until({&prog, &memtop}, memtop, seen,
                             [&](const json& r) { return proc_stats(r, pid).heap_bytes == C_TOTAL_BYTES; });
    REQUIRE(done);
    // One more report: the one that showed it is on disk by then.
    REQUIRE(next_report({&prog, &memtop}, memtop, seen));
    Run killed = stop_memtop({&prog, &memtop}, memtop, SIGKILL);
    CHECK(killed.exit_code == 128 + SIGKILL);

    Run rep = report_of(file);
    INFO(rep.diag);
    CHECK(rep.exit_code == 1);
    REQUIRE(rep.err_lines.size() == 1);
    CHECK(rep.err_lines[0].find("truncated") != std::string::npos);
    REQUIRE(rep.out_lines.size() == 1);
    // The kill may come between a report's printing and its recording:
    // the file's last report is one of the last two printed.
    const auto& printed = killed.out_lines;
    REQUIRE_FALSE(printed.empty());
    bool same =
        rep.out_lines[0] == printed.back() || (printed.size() > 1 && rep.out_lines[0] == printed[printed.size() - 2]);
    CHECK(same);
    CHECK(proc_stats(json::parse(rep.out_lines[0]), pid).heap_bytes == C_TOTAL_BYTES);
    CHECK(end_prog({&prog}, prog) == 0);
    unlink(file.c_str());
}

TEST_CASE("--record's samples hold resident and mapped memory; report --peak-rss finds the RSS peak", "[bpf][record]") {
    RT_REQUIRE_ENV();
    const std::string file = temp_file("rss.gz");
    Child prog, memtop;
    // rss_grow maps RSS_GROW_MB, touches every page ("grown"), unmaps it ("shrunk").
    const int pid = start_prog(prog, {prog_path("rss_grow_fp")});
    std::vector<std::string> argv = memtop_attach_args({pid});
    argv.insert(argv.end(), {"--record", file, "--record-interval", "0.05"});
    start_memtop(memtop, argv);
    wait_tracing({&prog, &memtop}, memtop, {pid});
    size_t seen = memtop.out_lines.size();
    REQUIRE(next_report({&prog, &memtop}, memtop, seen));
    const long long anon_before = proc_status_bytes(pid, "RssAnon");
    go({&prog, &memtop}, prog, "grown");
    const long long anon_grown = proc_status_bytes(pid, "RssAnon");
    const long long grow = (long long)RSS_GROW_MB << 20;
    // Samples every 0.05 s: wait for a report (every 0.5 s) past the growth,
    // then past the shrink.
    auto at_anon = [&](long long want) {
        for (int i = 0; i < 10; i++) {
            auto r = next_report({&prog, &memtop}, memtop, seen);
            if (!r) return false;
            const json* e = entry(*r, pid);
            if (e && std::llabs((*e)["rss_anon_bytes"].get<long long>() - want) <= 4096) return true;
        }
        return false;
    };
    REQUIRE(at_anon(anon_grown));
    go({&prog, &memtop}, prog, "shrunk");
    const long long anon_shrunk = proc_status_bytes(pid, "RssAnon");
    REQUIRE(at_anon(anon_shrunk));
    REQUIRE(next_report({&prog, &memtop}, memtop, seen));  // a few more samples after the shrink
    end_prog({&prog, &memtop}, prog);
    Run r = stop_memtop({&prog, &memtop}, memtop, 0);
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);

    // The samples of pid, folded as written (only changed processes listed).
    std::vector<json> recs = records_of(file);
    REQUIRE(recs.size() > 2);
    CHECK(recs[0]["version"] == 3);  // samples as changes since 2; with the Python domain since 3
    json state;
    std::vector<json> seen_entries;
    for (size_t i = 1; i < recs.size(); i++) {
        if (recs[i]["type"] != "sample") continue;
        for (const auto& p : recs[i]["processes"])
            if (p["pid"] == pid) state = p;
        if (!state.is_null()) seen_entries.push_back(state);
    }
    REQUIRE(seen_entries.size() > 10);
    long long anon_max = 0, mapped_max = 0, mapped_first = -1, mapped_last = 0;
    size_t with_rss = 0;
    for (const auto& e : seen_entries) {
        // Before the first report the kernel may hold no resident-memory
        // entry of an idle process yet (the report's per-CPU sum makes one).
        if (!e.contains("rss")) continue;
        with_rss++;
        CHECK(e["rss_bytes"] == e["rss"]["file"].get<long long>() + e["rss"]["anon"].get<long long>() +
                                    e["rss"]["shmem"].get<long long>());
        anon_max = std::max(anon_max, e["rss"]["anon"].get<long long>());
        // No entry before its first mapping while memtop watched: none mapped.
        const long long m = e.value("mapped_bytes", 0LL);
        if (mapped_first < 0) mapped_first = m;
        mapped_max = std::max(mapped_max, m);
        mapped_last = m;
    }
    CHECK(with_rss > 10);
    INFO("anon before " << anon_before << ", grown " << anon_grown << ", shrunk " << anon_shrunk << "; samples' max "
                        << anon_max << "; mapped first " << mapped_first << " max " << mapped_max << " last "
                        << mapped_last);
    // Mapped bytes: a -p target's mappings are recorded from the attach on,
    // allocating or not (rss_grow does not): its one mapping, then nothing
    // after the munmap.
    // Mappings are recorded by the full BPF build (bpf_task_pt_regs, Linux
    // 5.15); the 5.10 build records none, and says so.
    if (kernel_at_least(5, 15)) {
        CHECK(mapped_max == grow);
        CHECK(mapped_last == 0);
    } else {
        CHECK(mapped_max == 0);
    }
    // Resident memory in a sample is the kernel's counter as kmem:rss_stat
    // last left it, whose per-CPU parts (6.2+) may lag by the kernel's
    // batch on each CPU: max(32, 2 x CPUs) pages; before 6.2 each thread
    // keeps up to 64 page events of its own before adding them to the mm's
    // (SPLIT_RSS_COUNTING): 5.10 and 6.1 guests fell 9 pages short.
    const long long cpus = sysconf(_SC_NPROCESSORS_CONF);
    const long long lag = std::max(32LL, 2 * cpus) * 4096 * cpus + 64 * 4096;
    CHECK(std::llabs(anon_max - anon_grown) <= lag);
    CHECK(anon_max - anon_before >= grow - lag);

    // --peak-rss PID: the moment of that peak, the report at or before it.
    Run peak = run_memtop({memtop_path(), "report", file, "--peak-rss", std::to_string(pid), "--json"});
    INFO(peak.diag);
    CHECK(peak.exit_code == 0);
    REQUIRE(peak.err_lines.size() == 1);
    CHECK(peak.err_lines[0].find("the peak RSS of pid " + std::to_string(pid)) != std::string::npos);
    REQUIRE(peak.out_lines.size() == 1);
    // (Which report it shows is said on stderr above; checking that report's
    // anon RSS against the grown one is not done yet.)
    unlink(file.c_str());
}

TEST_CASE("report --lines from a recording: the source text only with --local-sources", "[bpf][record][lines]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    const std::string file = temp_file("lines.gz");
    Run live = run_memtop_cmd({prog_path("deep_sites")}, {"--lines", "deep_sites.cpp", "--record", file});
    INFO(live.diag);
    REQUIRE(live.exit_code == 0);
    REQUIRE(live.final_report);
    const json& lines = (*live.final_report)["lines"];
    REQUIRE(lines["matched"].is_string());
    INFO(lines.dump());
    // The source file as this host has it: the one the program was built from.
    std::vector<std::string> source;
    {
        std::ifstream in(progs_src("deep_sites.cpp"));
        for (std::string l; std::getline(in, l);) source.push_back(l);
    }
    const int level3 = marker_line("deep_sites.cpp", "deep_level3");
    REQUIRE(level3 > 0);
    REQUIRE(size_t(level3) <= source.size());
    std::string text3 = source[level3 - 1];
    text3 = text3.substr(text3.find_first_not_of(" \t"));
    // deep_level3's row: its line, DEEP_CHAIN_SIZE outstanding and allocated
    // in all, in one allocation, then the source text or the function.
    char bytes[32];
    snprintf(bytes, sizeof bytes, "%.1f KiB", DEEP_CHAIN_SIZE / 1024.0);
    const std::string row_start = std::to_string(level3) + " +" + std::regex_replace(bytes, std::regex("\\."), "\\.") +
                                  " +" + std::regex_replace(bytes, std::regex("\\."), "\\.") + " +1  ";
    const std::regex row("^ *" + row_start + "(.*)$");
    auto row_text = [&](const Run& r) -> std::optional<std::string> {
        for (const auto& l : r.out_lines) {
            std::smatch m;
            if (std::regex_match(l, m, row)) return m[1].str();
        }
        return std::nullopt;
    };
    auto has_line = [](const Run& r, const std::string& what) {
        return std::any_of(r.out_lines.begin(), r.out_lines.end(),
                           [&](const std::string& l) { return l.find(what) != std::string::npos; });
    };

    // Without --local-sources: the path is the recording host's; not read.
    Run plain = run_memtop({memtop_path(), "report", file});
    INFO(plain.diag);
    CHECK(plain.exit_code == 0);
    CHECK(has_line(plain, "Lines of deep_sites.cpp (" + lines["matched"].get<std::string>() + "):"));
    CHECK(has_line(plain, "(source text not read: the path is the recording host's; memtop report --local-sources"));
    auto fn = row_text(plain);
    REQUIRE(fn);
    CHECK(fn->front() == '(');
    CHECK(fn->find("deep_level3") != std::string::npos);
    CHECK_FALSE(has_line(plain, text3));

    // With it: the text of each line, from that path on this host. The
    // path is DWARF's: relative when the build made it so (ccache's
    // CCACHE_BASEDIR does), then read from the working directory, as a
    // live run reads it; the program's build directory is where it holds.
    const std::string matched = lines["matched"].get<std::string>();
    const std::string prog_dir = prog_path("deep_sites").substr(0, prog_path("deep_sites").rfind('/'));
    const std::string cwd = matched.front() == '/' ? "/" : prog_dir;
    std::vector<std::string> there;
    {
        std::ifstream in(matched.front() == '/' ? matched : cwd + "/" + matched);
        for (std::string l; std::getline(in, l);) there.push_back(l);
    }
    if (there != source) {
        WARN("skipped --local-sources: the recorded path " << matched << " is not " << progs_src("deep_sites.cpp")
                                                           << " from " << cwd);
        unlink(file.c_str());
        return;
    }
    Run local = run_memtop(
        {"/bin/sh", "-c", "cd '" + cwd + "' && exec '" + memtop_path() + "' report '" + file + "' --local-sources"});
    INFO(local.diag);
    CHECK(local.exit_code == 0);
    CHECK_FALSE(has_line(local, "source text not read"));
    auto src = row_text(local);
    REQUIRE(src);
    CHECK(*src == text3);
    // Every other listed line shows its text too, never the function.
    const std::regex any_row("^ *([0-9]+) +[0-9.]+ [KMG]?i?B +[0-9.]+ [KMG]?i?B +[0-9]+  (.*)$");
    int rows = 0;
    for (const auto& l : local.out_lines) {
        std::smatch m;
        if (!std::regex_match(l, m, any_row)) continue;
        const int n = std::stoi(m[1]);
        REQUIRE(n >= 1);
        REQUIRE(size_t(n) <= source.size());
        std::string want = source[n - 1];
        want = want.substr(std::min(want.size(), want.find_first_not_of(" \t")));
        if (want.size() > 80) want = want.substr(0, 77) + "...";
        CHECK(m[2].str() == want);
        rows++;
    }
    CHECK(rows == int(lines["lines"].size()));
    unlink(file.c_str());
}
