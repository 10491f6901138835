// Anonymous memory mapped outside malloc (mmap, munmap, mremap, brk), per
// process and per stack, in the system view: map_sites maps known amounts
// from named functions (expect.h, MAP_*).
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

const char* const kSites[] = {"map_keep",    "map_trim",   "map_gone",  "map_grow",
                              "map_reserve", "map_commit", "map_fixed", "grow_brk"};

bool names(const json& frame, const std::string& fn) {
    if (fn_is(frame, fn)) return true;
    if (frame.contains("inlined"))
        for (const auto& i : frame["inlined"])
            if (fn_is(i, fn)) return true;
    return false;
}

// Bytes still mapped per site function of `pid`, from a report's mappings:
// each stack is charged to the first frame that names a site.
std::map<std::string, long long> by_site(const json& report, int pid, std::vector<std::string>* problems) {
    std::map<std::string, long long> out;
    for (const auto& st : report["mappings"]) {
        if (st["pid"] != pid) continue;
        const json& frames = st["frames"];
        bool found = false;
        for (const auto& f : frames) {
            for (const char* site : kSites)
                if (names(f, site)) {
                    out[site] += st["bytes"].get<long long>();
                    found = true;
                    break;
                }
            if (found) break;
        }
        // Frame 0 is the syscall's instruction, in libc's wrapper.
        if (found && !(frames[0]["module"].is_string() &&
                       frames[0]["module"].get<std::string>().find("libc") != std::string::npos))
            problems->push_back("frame 0 not in libc: " + st.dump());
    }
    return out;
}

}  // namespace

TEST_CASE("system view: anonymous mappings per stack, exact through trims, mremap, MAP_FIXED and brk",
          "[bpf][system][mappings]") {
    RT_REQUIRE_ENV();
    Child memtop, prog;
    start_memtop(memtop, {memtop_path(), "--json", "-d", "1", "-T", "200"});
    wait_memtop_ready({&memtop}, memtop, "memtop: watching");
    if (!kernel_at_least(5, 15)) {
        // bpf_task_pt_regs (5.15) and the full BPF build: memtop says so.
        REQUIRE(wait_line({&memtop}, memtop, true,
                          [](const std::string& l) { return l.find("no mapping stacks") != std::string::npos; }));
        stop_memtop({&memtop}, memtop, SIGINT);
        return;
    }
    const int pid = start_prog(prog, {prog_path("map_sites_nofp")}, {&memtop});
    size_t seen = memtop.out_lines.size();
    go({&memtop, &prog}, prog, "mapped");

    const long long KB = 1024;
    std::vector<std::string> problems;
    std::string last;
    // Every site's mapping is made before "mapped": wait for the report
    // taken after the last of them.
    auto mapped = report_until(
        {&memtop, &prog}, memtop, seen,
        [&](const json& r) {
            std::vector<std::string> ignored;
            return by_site(r, pid, &ignored)["grow_brk"] == MAP_BRK_KB * KB;
        },
        &last);
    INFO("last report: " << last);
    REQUIRE(mapped);
    auto sites = by_site(*mapped, pid, &problems);
    CHECK(problems == std::vector<std::string>{});
    CHECK(sites["map_keep"] == MAP_KEEP_KB * KB);
    CHECK(sites["map_trim"] == MAP_TRIM_KB * KB);
    CHECK(sites["map_gone"] == MAP_GONE_KB * KB);
    CHECK(sites["map_grow"] == MAP_GROW_KB * KB);
    CHECK(sites["map_reserve"] == MAP_RESERVE_KB * KB);
    CHECK(sites["map_commit"] == MAP_COMMIT_KB * KB);
    CHECK(sites["map_fixed"] == MAP_FIXED_KB * KB);
    CHECK(sites["grow_brk"] == MAP_BRK_KB * KB);
    const long long sum = (MAP_KEEP_KB + MAP_TRIM_KB + MAP_GROW_KB + MAP_COMMIT_KB + MAP_FIXED_KB + MAP_BRK_KB) * KB;
    const json* p = entry(*mapped, pid);
    REQUIRE(p);
    // The process also mapped a little before "go" (stdio's buffers).
    const long long before_unmap = (*p)["mapped_bytes"].get<long long>();
    CHECK(before_unmap >= sum);
    CHECK((*p)["mapped_peak_bytes"].get<long long>() >= before_unmap);

    go({&memtop, &prog}, prog, "unmapped");
    auto unmapped = report_until(
        {&memtop, &prog}, memtop, seen,
        [&](const json& r) {
            std::vector<std::string> ignored;
            auto s = by_site(r, pid, &ignored);
            return s["map_keep"] == 0 && s["grow_brk"] == 0;
        },
        &last);
    REQUIRE(unmapped);
    sites = by_site(*unmapped, pid, &problems);
    CHECK(sites["map_trim"] == MAP_TRIM_KB * KB);
    CHECK(sites["map_grow"] == MAP_GROW_KB * KB);
    p = entry(*unmapped, pid);
    REQUIRE(p);
    CHECK((*p)["mapped_bytes"].get<long long>() == before_unmap - (MAP_KEEP_KB + MAP_BRK_KB) * KB);
    CHECK((*p)["mapped_peak_bytes"].get<long long>() >= before_unmap);  // the peak stays

    // Its exit leaves a final line with the peak.
    end_prog({&memtop, &prog}, prog);
    auto ended = report_until(
        {&memtop}, memtop, seen,
        [&](const json& r) {
            const json* e = entry(r, pid);
            return e && (*e)["exited"] == true;
        },
        &last);
    REQUIRE(ended);
    p = entry(*ended, pid);
    CHECK((*p)["mapped_peak_bytes"].get<long long>() >= before_unmap);
    CHECK(stop_memtop({&memtop}, memtop, SIGINT).exit_code == 0);
}

// With a target, malloc has a return probe: the kernel replaces its return
// address with a trampoline in the [uprobes] page for the length of the
// call. A stack taken inside (glibc maps a big block from malloc) walks
// through that slot, and must go on to malloc's real caller and main.
TEST_CASE("a mapping made inside a traced malloc: its stack goes through the return probe to main", "[bpf][mappings]") {
    RT_REQUIRE_ENV();
    if (!kernel_at_least(5, 15)) {
        WARN("mapping stacks need Linux 5.15");
        return;
    }
    Child prog, memtop;
    const int pid = start_prog(prog, {prog_path("big_malloc_nofp"), "--wait"});
    start_memtop(memtop, memtop_attach_args({pid}));
    wait_tracing({&prog, &memtop}, memtop, {pid});
    size_t seen = memtop.out_lines.size();
    go({&prog, &memtop}, prog);

    auto in_big_site = [&](const json& r) -> const json* {
        for (const auto& st : r["mappings"]) {
            if (st["pid"] != pid) continue;
            for (const auto& f : st["frames"])
                if (names(f, "big_site")) return &st;
        }
        return nullptr;
    };
    std::string last;
    auto r = report_until(
        {&prog, &memtop}, memtop, seen, [&](const json& j) { return in_big_site(j) != nullptr; }, &last);
    INFO("last report: " << last);
    REQUIRE(r);
    const json& st = *in_big_site(*r);
    INFO("stack: " << st.dump());
    // glibc maps the block with its header, rounded up to pages.
    CHECK(st["bytes"].get<long long>() >= BIG_MALLOC_SIZE);
    CHECK(st["bytes"].get<long long>() <= BIG_MALLOC_SIZE + 4096);
    std::vector<std::string> fns;
    for (const auto& f : st["frames"]) fns.push_back(fn_of(f));
    auto at = [&](const std::string& fn) {
        for (size_t i = 0; i < fns.size(); i++)
            if (fn == fns[i]) return int(i);
        return -1;
    };
    // ... -> malloc -> big_site -> main, in that order, nothing in between.
    const int m = std::max(at("malloc"), at("__libc_malloc"));
    REQUIRE(m >= 0);
    CHECK(at("big_site") == m + 1);
    CHECK(at("main") == m + 2);
    for (const auto& f : st["frames"]) CHECK(f["address"] != "0x7fffffffe000");
    CHECK(st["complete"] == true);
    // The heap side counts the block as always.
    CHECK(stack_with_bytes(*r, pid, BIG_MALLOC_SIZE));

    end_prog({&prog, &memtop}, prog);
    stop_memtop({&prog, &memtop}, memtop, 0);
}
