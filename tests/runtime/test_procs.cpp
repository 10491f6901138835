// Multi-threaded, fork and exec behaviour: threads, forker.
#include <signal.h>
#include <stdio.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

void check_thread_sites(const json& rep, int pid) {
    Sum keep = sum_frame0(rep, pid, "thread_keep");
    CHECK(keep.bytes == THR_TOTAL_BYTES);
    CHECK(keep.allocs == THR_TOTAL_ALLOCS);
    CHECK(keep.allocs_total == THR_TOTAL_ALLOCS);
    CHECK(keep.alloc_bytes_total == THR_TOTAL_BYTES);
    CHECK(sum_frame0(rep, pid, "thread_temp").stacks == 0);
    Sum all = sum_all(rep, pid);
    CHECK(all.bytes == THR_TOTAL_BYTES);
    CHECK(all.allocs == THR_TOTAL_ALLOCS);
}

}  // namespace

TEST_CASE("threads under memtop -- CMD: totals exact", "[bpf][threads][cmd]") {
    RT_REQUIRE_ENV();
    const std::string target = "threads_nofp";
    if (!have_prog(target)) return;
    Run r = run_memtop_cmd({prog_path(target)});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    check_report_shape(rep);
    ProcStats p = proc_by_comm(rep, target);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    check_thread_sites(rep, p.pid);
    CHECK(p.heap_bytes == THR_TOTAL_BYTES);
    CHECK(p.allocs_total == THR_ALLOCS_TOTAL + THR_N * THR_LIBC_ALLOCS_PER_THREAD);
    CHECK(p.frees_total == THR_FREES_TOTAL + THR_N * THR_LIBC_ALLOCS_PER_THREAD);
    CHECK(p.heap_peak_bytes >= THR_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes <= THR_TOTAL_BYTES + THR_N * (THR_LIBC_MAX_BYTES_PER_THREAD + THR_TEMP_SIZE));
}

TEST_CASE("memtop -p on a multi-threaded process: totals exact", "[bpf][threads][attach]") {
    RT_REQUIRE_ENV();
    const std::string target = "threads_fp";
    if (!have_prog(target)) return;
    // threads are created (and blocked) before "ready": everything memtop
    // sees after attaching is the program's own allocations
    Attached a = run_attached({{prog_path(target), "--wait"}});
    INFO(a.run.diag);
    CHECK(a.run.exit_code == 0);
    REQUIRE(a.run.final_report);
    const json& rep = *a.run.final_report;
    check_report_shape(rep);
    const int pid = a.pids.at(0);
    ProcStats p = proc_stats(rep, pid);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, pid));
    check_thread_sites(rep, pid);
    CHECK(p.heap_bytes == THR_TOTAL_BYTES);
    CHECK(p.heap_peak_bytes == THR_TOTAL_BYTES);  // temp phase ends (barrier) before keeping starts
    CHECK(p.allocs_total == THR_ALLOCS_TOTAL);
    CHECK(p.frees_total == THR_FREES_TOTAL);
}

TEST_CASE("memtop --heap-all: fork parent and child are accounted separately", "[bpf][fork][heap-all]") {
    RT_REQUIRE_ENV();
    const std::string target = "forker_nofp";
    if (!have_prog(target)) return;
    // -T is global across processes: other processes on the host must not
    // push the forker's stacks out of the report.  Only the final report
    // (on SIGINT) is used, so a long interval keeps the output small.
    // memtop first, the program then (its fork must be seen): the steps of
    // the attach protocol in that order.
    std::vector<std::string> margv = {memtop_path(), "--heap-all", "--exact", "--json", "-d", "60", "-T", "1000000"};
    Child mt;
    start_memtop(mt, margv);
    wait_memtop_ready({&mt}, mt);

    Child prog;
    const int parent = start_prog(prog, {prog_path(target), "--wait"}, {&mt});
    REQUIRE(prog.write_stdin("go\n"));
    auto child_line =
        wait_line({&mt, &prog}, prog, false, [](const std::string& l) { return starts_with(l, "child "); });
    REQUIRE(child_line);
    const int child = std::stoi(child_line->substr(6));
    REQUIRE(child != parent);
    // "done" comes after the child's handshake: both processes are alive and
    // finished allocating
    expect_line({&mt, &prog}, prog, "done");

    // The final report symbolizes every stack of every process: slow in a
    // TCG guest (test_container.cpp).
    Run r = stop_memtop({&mt, &prog}, mt, SIGINT, std::chrono::seconds(120));
    CHECK(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    check_report_shape(rep);

    CHECK(end_prog({&prog}, prog) == 0);

    {
        ProcStats p = proc_stats(rep, parent);
        INFO("parent " << parent << "\n" << describe_stacks(rep, parent));
        REQUIRE(p.found);
        CHECK(p.heap_bytes == FORK_PARENT_BYTES);  // the child's free of a copy changes nothing here
        CHECK(p.heap_peak_bytes == FORK_PARENT_BYTES);
        CHECK(p.allocs_total == FORK_PARENT_N);
        CHECK(p.frees_total == 0);
        Sum ps = sum_frame0(rep, parent, "parent_site");
        CHECK(ps.bytes == FORK_PARENT_BYTES);
        CHECK(ps.allocs == FORK_PARENT_N);
        CHECK(sum_frame0(rep, parent, "child_site").stacks == 0);
        CHECK(sum_frame0(rep, parent, "child_reuse_site").stacks == 0);
        CHECK(sum_all(rep, parent).bytes == FORK_PARENT_BYTES);
    }
    {
        ProcStats c = proc_stats(rep, child);
        INFO("child " << child << "\n" << describe_stacks(rep, child));
        REQUIRE(c.found);
        // the inherited blocks are not the child's: its free of one of them
        // is not counted and does not reduce anything
        CHECK(c.heap_bytes == FORK_CHILD_BYTES);
        CHECK(c.heap_peak_bytes == FORK_CHILD_BYTES);
        CHECK(c.allocs_total == FORK_CHILD_ALLOCS);
        CHECK(c.frees_total == 0);
        Sum cs = sum_frame0(rep, child, "child_site");
        CHECK(cs.bytes == FORK_CHILD_SIZE);
        CHECK(cs.allocs == 1);
        Sum rs = sum_frame0(rep, child, "child_reuse_site");
        CHECK(rs.bytes == FORK_PARENT_SIZE);
        CHECK(rs.allocs == 1);
        CHECK(sum_frame0(rep, child, "parent_site").stacks == 0);
        CHECK(sum_all(rep, child).bytes == FORK_CHILD_BYTES);
    }
}

TEST_CASE("memtop -- CMD across exec: pre-exec allocations disappear", "[bpf][exec][cmd]") {
    RT_REQUIRE_ENV();
    const std::string target = "forker_fp";
    if (!have_prog(target)) return;
    // Every page's first touch sampled with p = 1 - exp(-1): the old
    // image's EXEC_PRE_TOUCH_MB would be ~20 MiB of growth.
    Run r = run_memtop_cmd({prog_path(target), "--exec"}, {"--fault-sample", "4096"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    check_report_shape(rep);
    ProcStats p = proc_by_comm(rep, target);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    CHECK(p.heap_bytes == EXEC_POST_SIZE);
    if (kernel_has_unwinder()) {
        // Growth and mappings are the new image's: the pages the old one
        // touched before the exec are not (they were, growth keyed by pid,
        // and their frames were named with the new image's maps: `?? (?)`).
        long long grown = 0, mapped = 0;
        std::string growth_seen;
        for (const auto& st : rep["growth_stacks"])
            if (st["pid"] == p.pid) {
                grown += st["bytes"].get<long long>();
                growth_seen += chain_of(st) + " " + std::to_string(st["bytes"].get<long long>()) + "\n";
            }
        for (const auto& st : rep.value("mappings", json::array()))
            if (st["pid"] == p.pid) mapped += st["bytes"].get<long long>();
        INFO("growth stacks of the new image:\n" << growth_seen);
        CHECK(grown > 0);
        CHECK(grown < (long long)EXEC_PRE_TOUCH_MB << 19);
        // The ended program's mapping stacks are listed (they were not, its
        // address space gone from the kernel's table at exit): exactly its
        // MAPPED figure, the new image's.
        const json* e = entry(rep, p.pid);
        REQUIRE(e);
        CHECK(mapped == (*e)["mapped_bytes"].get<long long>());
        CHECK(mapped > 0);
        CHECK(mapped < (long long)EXEC_PRE_TOUCH_MB << 20);
    }
    CHECK(sum_frame0(rep, p.pid, "pre_exec_site").stacks == 0);
    Sum post = sum_frame0(rep, p.pid, "post_exec_site");
    CHECK(post.bytes == EXEC_POST_SIZE);
    CHECK(post.allocs == 1);
    CHECK(sum_all(rep, p.pid).bytes == EXEC_POST_SIZE);
    // the new image's symbols are used after the exec
    for (const json* st : stacks_frame0(rep, p.pid, "post_exec_site")) {
        const json& f = (*st)["frames"];
        INFO(chain_of(*st));
        REQUIRE(f.size() >= 2);
        CHECK(fn_is(f[1], "run_after_exec"));
    }
}

namespace {

// The output of a command (bpftool), whole.
std::string command_output(const std::string& cmd) {
    std::string text;
    if (FILE* f = popen(cmd.c_str(), "r")) {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        pclose(f);
    }
    return text;
}

struct OwnMap {
    std::string name;
    long id = -1;
    long long max_entries = 0, memlock = 0;
};

// memtop's maps by name (each once: a map shared by two of memtop's objects
// has two descriptors), as bpftool shows them.
std::map<std::string, OwnMap> own_maps(int pid) {
    std::map<std::string, OwnMap> maps;
    std::set<long> ids;
    std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo/";
    for (int fd = 0; fd < 1024; fd++) {
        FILE* f = fopen((dir + std::to_string(fd)).c_str(), "r");
        if (!f) continue;
        long id = -1;
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "map_id: %ld", &id) == 1) break;
        fclose(f);
        if (id < 0 || !ids.insert(id).second) continue;
        auto j = json::parse(command_output("bpftool -j map show id " + std::to_string(id) + " 2>/dev/null"), nullptr,
                             false);
        if (!j.is_object()) continue;
        OwnMap m{j.value("name", ""), id, j.value("max_entries", 0LL), j.value("bytes_memlock", 0LL)};
        maps[m.name] = m;
    }
    return maps;
}

// The id of the BPF map named `name` among memtop's own (-1: none).
long own_map_id(int pid, const std::string& name) {
    auto maps = own_maps(pid);
    auto it = maps.find(name);
    return it == maps.end() ? -1 : it->second.id;
}

// The keys of map `id` (bpftool's BTF-formatted JSON).
std::vector<json> map_keys(long id) {
    std::vector<json> keys;
    auto j =
        json::parse(command_output("bpftool -j map dump id " + std::to_string(id) + " 2>/dev/null"), nullptr, false);
    if (j.is_array())
        for (const auto& e : j)
            if (e.contains("formatted")) keys.push_back(e["formatted"]["key"]);
    return keys;
}

size_t entries_of(const std::vector<json>& keys, int tgid) {
    size_t n = 0;
    for (const auto& k : keys) n += k.is_object() && k.value("tgid", -1) == tgid;
    return n;
}

}  // namespace

// memtop deletes an ended process's kernel entries (its aggregates, its live
// blocks' records, the stacks only it used) at the next report, in batches,
// and leaves those of a process still traced alone: without it, a busy host
// fills the maps with the dead.
TEST_CASE("an ended process's kernel entries are deleted, a live one's kept", "[bpf][attach][purge]") {
    RT_REQUIRE_ENV();
    if (!have_prog("c_sites_fp") || !have_prog("cpp_sites_fp")) return;
    Child a, b;
    const int pa = start_prog(a, {prog_path("c_sites_fp"), "--wait"});
    const int pb = start_prog(b, {prog_path("cpp_sites_fp"), "--wait"}, {&a});
    Child mt;
    start_memtop(mt, {memtop_path(), "--json", "-d", "1", "-p", std::to_string(pa) + "," + std::to_string(pb)});
    wait_tracing({&mt, &a, &b}, mt, {pa, pb});
    go({&mt, &a, &b}, a);
    go({&mt, &a, &b}, b);

    const long aggs = own_map_id(mt.pid, "aggs"), allocs = own_map_id(mt.pid, "allocs"),
               stacks = own_map_id(mt.pid, "stacks");
    REQUIRE(aggs >= 0);
    REQUIRE(allocs >= 0);
    REQUIRE(stacks >= 0);
    // Both programs keep their blocks until they exit: entries of each.
    auto agg_keys = map_keys(aggs);
    REQUIRE(entries_of(agg_keys, pa) > 0);
    const size_t b_aggs = entries_of(agg_keys, pb);
    REQUIRE(b_aggs > 0);
    REQUIRE(entries_of(map_keys(allocs), pa) > 0);
    const size_t b_allocs = entries_of(map_keys(allocs), pb);
    REQUIRE(b_allocs > 0);
    // The stacks only the C program's aggregates name (the C++ program's
    // frames are its own).
    std::set<unsigned long long> a_only, b_ids;
    for (const auto& k : agg_keys)
        if (k.value("tgid", -1) == pb) b_ids.insert(k.value("stack_id", 0ULL));
    for (const auto& k : agg_keys)
        if (k.value("tgid", -1) == pa && !b_ids.count(k.value("stack_id", 0ULL)))
            a_only.insert(k.value("stack_id", 0ULL));
    REQUIRE(!a_only.empty());

    CHECK(end_prog({&mt, &a, &b}, a) == 0);
    std::string left;
    bool purged = pump_until(
        {&mt, &b},
        [&] {
            auto ak = map_keys(aggs), lk = map_keys(allocs), sk = map_keys(stacks);
            size_t stacks_left = 0;
            for (const auto& k : sk)
                if (k.is_number_unsigned() && a_only.count(k.get<unsigned long long>())) stacks_left++;
            left = "aggregates " + std::to_string(entries_of(ak, pa)) + ", records " +
                   std::to_string(entries_of(lk, pa)) + ", stacks " + std::to_string(stacks_left) + " of " +
                   std::to_string(a_only.size());
            return entries_of(ak, pa) == 0 && entries_of(lk, pa) == 0 && stacks_left == 0;
        },
        30s);
    INFO("the ended process's entries left: " << left);
    CHECK(purged);
    // The live process lost nothing.
    CHECK(entries_of(map_keys(aggs), pb) == b_aggs);
    CHECK(entries_of(map_keys(allocs), pb) == b_allocs);

    CHECK(end_prog({&mt, &b}, b) == 0);
    stop_memtop({&mt}, mt, SIGINT);
}

// A hash map's bucket array is allocated whole when the map is made (16
// bytes a bucket), even where its elements are allocated as used: the
// tables of a part that is off must not be sized for it. And memtop's own
// figure of its kernel memory is what the kernel says of its maps.
TEST_CASE("memtop's kernel maps: the Python domain's tables take one entry when it is off; kernel_bytes is bpftool's",
          "[bpf][attach][footprint][host]") {
    RT_REQUIRE_ENV();
    if (!have_prog("c_sites_fp")) return;
    Child a;
    const int pa = start_prog(a, {prog_path("c_sites_fp"), "--wait"});
    Child mt;
    start_memtop(mt, {memtop_path(), "--json", "-d", "1", "-p", std::to_string(pa)});
    wait_tracing({&mt, &a}, mt, {pa});
    // Reports while the parked target allocates nothing: the maps stay as they are.
    size_t seen = 0;
    REQUIRE(next_report({&mt, &a}, mt, seen));
    auto maps = own_maps(mt.pid);
    auto report = next_report({&mt, &a}, mt, seen);
    REQUIRE(report);
    REQUIRE(maps.count("allocs"));
    REQUIRE(maps.count("py_allocs"));
    REQUIRE(maps.count("mi_blocks"));
    CHECK(maps["allocs"].max_entries == 1LL << 21);
    CHECK(maps["py_allocs"].max_entries == 1);
    CHECK(maps["py_aggs"].max_entries == 1);
    CHECK(maps["mi_blocks"].max_entries == maps["allocs"].max_entries / 8);
    long long total = 0;
    std::string listing;
    for (const auto& [name, m] : maps) {
        total += m.memlock;
        listing += name + " " + std::to_string(m.max_entries) + " " + std::to_string(m.memlock) + "\n";
    }
    INFO(listing);
    // The reports' figure is read a moment apart from bpftool's: maps of
    // elements allocated as used may move by a few elements meanwhile.
    const long long reported = report->at("self").at("kernel_bytes").get<long long>();
    CHECK(std::llabs(reported - total) <= total / 100);
    go({&mt, &a}, a);
    CHECK(end_prog({&mt, &a}, a) == 0);
    stop_memtop({&mt}, mt, SIGINT);
}
