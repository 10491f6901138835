// Whole stacks through code without frame pointers (unwind tables walked in
// BPF), named frame by frame: deep_sites and its library are -O2
// -fomit-frame-pointer, and Debian's libc and libstdc++ have no frame
// pointers either. Also: split debug info found by build-id, a deleted
// binary, and a program only its own mount namespace can see.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

struct Want {
    std::string function;  // "" = not checked
    std::string file;      // basename; "" = not checked
    int line = 0;          // 0 = not checked
    std::string module;    // basename; "" = not checked
};

// A frame in libc: its static functions are named only where libc's debug
// info is installed (libc6-dbg), so only the module is asserted.
const Want kLibcFrame{"", "", 0, "libc.so.6"};

// frames[i] names want[i], at its file:line.
void check_frames(const json& st, const std::vector<Want>& want) {
    const json& f = st["frames"];
    INFO("chain: " << chain_of(st));
    REQUIRE(f.size() >= want.size());
    for (size_t i = 0; i < want.size(); i++) {
        INFO("frame " << i << " should be " << want[i].function << " " << want[i].module);
        if (!want[i].function.empty()) CHECK(fn_is(f[i], want[i].function));
        if (!want[i].module.empty()) {
            REQUIRE(f[i]["module"].is_string());
            CHECK(basename_of(f[i]["module"].get<std::string>()) == want[i].module);
        }
        if (!want[i].file.empty()) {
            REQUIRE(f[i]["file"].is_string());
            CHECK(basename_of(f[i]["file"].get<std::string>()) == want[i].file);
        }
        if (want[i].line) {
            REQUIRE(f[i]["line"].is_number_integer());
            CHECK(f[i]["line"].get<int>() == want[i].line);
        }
    }
}

// The frames below main: libc's start code, ending at _start.
void check_reaches_start(const json& st) {
    const json& f = st["frames"];
    INFO("chain: " << chain_of(st));
    REQUIRE(!f.empty());
    CHECK(fn_is(f.back(), "_start"));
    CHECK(st["complete"] == true);
}

// Every site of deep_sites (expect.h DEEP_*), whole and named. `module` is
// the program's file name as its frames should show it.
void check_deep_sites(const json& rep, int pid, const std::string& module = "deep_sites") {
    const std::string src = "deep_sites.cpp", lib = "deep_lib.c";
    if (!kernel_has_unwinder()) {
        // Before 5.17 memtop falls back to frame pointers and says so: the
        // allocator's caller is still right, the stacks are incomplete.
        WARN("kernel before 5.17: checking the frame-pointer fallback only");
        CHECK(rep["unwind"]["method"] == "frame_pointers");
        for (auto [size, fn] : {std::pair{DEEP_CHAIN_SIZE, "deep_level3"},
                                {DEEP_LIB_SIZE, "deep_lib_inner"},
                                {DEEP_THREAD_SIZE, "deep_thread_site"}}) {
            const json* st = stack_with_bytes(rep, pid, size);
            REQUIRE(st);
            CHECK(fn_is((*st)["frames"][0], fn));
            CHECK((*st)["complete"] == false);
        }
        return;
    }
    auto line = [&](const std::string& file, const std::string& name) {
        int l = marker_line(file, name);
        REQUIRE(l > 0);
        return l;
    };
    INFO(describe_stacks(rep, pid));

    const json* chain = stack_with_bytes(rep, pid, DEEP_CHAIN_SIZE);
    REQUIRE(chain);
    check_frames(*chain, {{"deep_level3", src, line(src, "deep_level3"), ""},
                          {"deep_level2", src, line(src, "deep_level2"), ""},
                          {"deep_level1", src, line(src, "deep_level1"), ""},
                          {"run_deep_sites", src, line(src, "run_deep_sites_chain"), ""},
                          {"main", src, line(src, "main"), ""},
                          kLibcFrame});
    check_reaches_start(*chain);
    CHECK(basename_of((*chain)["frames"][0]["module"].get<std::string>()) == module);

    // The allocation's return address is in deep_inline_outer; the inlined
    // make_node is named from debug info, at the line of its `new`.
    const json* inl = stack_with_bytes(rep, pid, DEEP_NEW_SIZE);
    REQUIRE(inl);
    check_frames(*inl, {{"deep_inline_outer", src, line(src, "deep_inline_outer"), ""},
                        {"run_deep_sites", src, line(src, "run_deep_sites_inline"), ""},
                        {"main", src, line(src, "main"), ""}});
    const json& inlined = (*inl)["frames"][0]["inlined"];
    REQUIRE(inlined.size() >= 1);
    CHECK(inlined[0]["function"].get<std::string>().find("make_node") != std::string::npos);
    CHECK(inlined[0]["line"] == line(src, "make_node"));
    check_reaches_start(*inl);

    const json* vialib = stack_with_bytes(rep, pid, DEEP_LIB_SIZE);
    REQUIRE(vialib);
    check_frames(*vialib, {{"deep_lib_inner", lib, line(lib, "deep_lib_inner"), ""},
                           {"deep_lib_entry", lib, line(lib, "deep_lib_entry"), ""},
                           {"deep_via_lib", src, line(src, "deep_via_lib"), ""},
                           {"run_deep_sites", src, line(src, "run_deep_sites_lib"), ""},
                           {"main", src, line(src, "main"), ""}});
    CHECK(basename_of((*vialib)["frames"][0]["module"].get<std::string>()) == "libdeep_lib.so");
    check_reaches_start(*vialib);

    // A thread's stack ends at its start routine in libc.
    const json* thr = stack_with_bytes(rep, pid, DEEP_THREAD_SIZE);
    REQUIRE(thr);
    check_frames(*thr, {{"deep_thread_site", src, line(src, "deep_thread_site"), ""},
                        {"deep_thread_main", src, line(src, "deep_thread_main"), ""},
                        kLibcFrame});
    CHECK((*thr)["complete"] == true);
}

std::string tmpdir() {
    char dir[] = "/tmp/memtop-unwind-XXXXXX";
    REQUIRE(mkdtemp(dir));
    return dir;
}

void sh(const std::string& cmd) {
    INFO(cmd);
    REQUIRE(system(cmd.c_str()) == 0);
}

}  // namespace

TEST_CASE("deep_sites under memtop -- CMD: whole stacks without frame pointers, every frame named",
          "[bpf][unwind][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    Run r = run_memtop_cmd({prog_path("deep_sites")});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, "deep_sites");
    REQUIRE(p.found);
    check_deep_sites(rep, p.pid);

    if (!kernel_has_unwinder()) return;
    const json& u = rep["unwind"];
    CHECK(u["method"] == "tables");
    CHECK(u["incomplete"] == 0);
    CHECK(u["stacks"].get<int>() >= 4);
    CHECK(u["tables"]["files"].get<int>() >= 4);  // deep_sites, libdeep_lib.so, libc, ld.so (and libstdc++)
    CHECK(u["tables"]["rows"].get<long long>() > 0);
    CHECK(u["tables"]["bytes"].get<long long>() == u["tables"]["capacity_rows"].get<long long>() * 8);
}

TEST_CASE("--frame-pointers-only: the same stacks stop early and say so", "[bpf][unwind][cmd]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    Run r = run_memtop_cmd({prog_path("deep_sites")}, {"--frame-pointers-only"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, "deep_sites");
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    for (long long size : {DEEP_CHAIN_SIZE, DEEP_NEW_SIZE, DEEP_LIB_SIZE}) {
        const json* st = stack_with_bytes(rep, p.pid, size);
        REQUIRE(st);
        // frames[0] is still right: it is read at the allocator's entry.
        CHECK(!fn_of((*st)["frames"][0]).empty());
        CHECK((*st)["complete"] == false);
        bool has_main = false;
        for (const auto& f : (*st)["frames"]) has_main = has_main || fn_is(f, "main");
        CHECK_FALSE(has_main);
    }
    const json& u = rep["unwind"];
    CHECK(u["method"] == "frame_pointers");
    CHECK(u["incomplete"].get<int>() >= 3);
    bool names_program = false;
    for (const auto& m : u["incomplete_by_module"])
        names_program = names_program || basename_of(m["module"].get<std::string>()) == "deep_sites";
    CHECK(names_program);
}

TEST_CASE("memtop -p on a running deep_sites: whole stacks", "[bpf][unwind][attach]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    Attached a = run_attached({{prog_path("deep_sites"), "--wait"}});
    INFO(a.run.diag);
    REQUIRE(a.run.final_report);
    check_deep_sites(*a.run.final_report, a.pids[0]);
}

TEST_CASE("split debug info found by build-id names a stripped program's frames", "[bpf][unwind][debuginfo]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    const std::string dir = tmpdir(), exe = dir + "/deep_sites";
    sh("cp " + prog_path("deep_sites") + " " + exe);
    // Build id -> /usr/lib/debug/.build-id/xx/rest.debug, where libdw looks.
    std::string id;
    {
        std::string cmd = "readelf -n " + exe + " | sed -n 's/.*Build ID: //p' > " + dir + "/id";
        sh(cmd);
        std::ifstream in(dir + "/id");
        std::getline(in, id);
    }
    REQUIRE(id.size() > 2);
    const std::string dbgdir = "/usr/lib/debug/.build-id/" + id.substr(0, 2);
    const std::string dbg = dbgdir + "/" + id.substr(2) + ".debug";
    sh("mkdir -p " + dbgdir + " && objcopy --only-keep-debug " + exe + " " + dbg + " && strip --strip-all " + exe);
    // Stripped: no symbol table, no DWARF left in the program itself.
    REQUIRE(system(("readelf -S " + exe + " | grep -q -e '\\.symtab' -e '\\.debug_info'").c_str()) != 0);

    Run r = run_memtop_cmd({exe});
    unlink(dbg.c_str());
    sh("rm -rf " + dir);
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    ProcStats p = proc_by_comm(*r.final_report, "deep_sites");
    REQUIRE(p.found);
    check_deep_sites(*r.final_report, p.pid);
}

TEST_CASE("a deleted binary is unwound and named through its mapping", "[bpf][unwind][deleted]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    const std::string dir = tmpdir(), exe = dir + "/deep_sites";
    sh("cp " + prog_path("deep_sites") + " " + exe);

    AttachOptions opt;
    // Once it runs, gone from disk: the process maps "(deleted)".
    opt.before_attach = [&] { sh("rm -rf " + dir); };
    Attached a = run_attached({{exe, "--wait"}}, opt);
    INFO(a.run.diag);
    REQUIRE(a.run.final_report);
    check_deep_sites(*a.run.final_report, a.pids[0]);
}

TEST_CASE("a program only its own mount namespace can see", "[bpf][unwind][namespace]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    // A private tmpfs holds the program and its library: the host's path
    // names nothing, only /proc/PID/root and map_files reach the files.
    const std::string dir = tmpdir();
    const std::string lib_dir = prog_path("deep_sites").substr(0, prog_path("deep_sites").rfind('/'));
    std::string inner = "mount -t tmpfs none " + dir + " && cp " + prog_path("deep_sites") + " " + lib_dir +
                        "/libdeep_lib.so " + dir + "/ && LD_LIBRARY_PATH=" + dir + " exec " + dir +
                        "/deep_sites --wait";
    AttachOptions opt;
    opt.before_attach = [&] {
        struct stat st;
        REQUIRE(stat((dir + "/deep_sites").c_str(), &st) != 0);  // not visible from here
    };
    Attached a = run_attached({{"unshare", "-m", "--propagation", "private", "sh", "-c", inner}}, opt);
    rmdir(dir.c_str());
    INFO(a.run.diag);
    REQUIRE(a.run.final_report);
    check_deep_sites(*a.run.final_report, a.pids[0]);
}

TEST_CASE("--lines deep_sites.cpp: each line's bytes, through calls and inlined code", "[bpf][unwind][lines]") {
    RT_REQUIRE_ENV();
    REQUIRE(have_prog("deep_sites"));
    Run r = run_memtop_cmd({prog_path("deep_sites")}, {"--lines", "deep_sites.cpp"});
    INFO(r.diag);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& lines = (*r.final_report)["lines"];
    REQUIRE(lines.is_object());
    CHECK(lines["file"] == "deep_sites.cpp");
    REQUIRE(lines["matched"].is_string());
    CHECK(basename_of(lines["matched"].get<std::string>()) == "deep_sites.cpp");
    auto at = [&](const std::string& marker) -> const json* {
        int want = marker_line("deep_sites.cpp", marker);
        for (const auto& l : lines["lines"])
            if (l["line"] == want) return &l;
        return nullptr;
    };
    INFO(lines.dump());
    // The allocation's own line, and the lines that called it.
    for (const char* m : {"deep_level3", "deep_level2", "deep_level1", "run_deep_sites_chain"}) {
        INFO(m);
        if (!kernel_has_unwinder() && std::string(m) != "deep_level3")
            continue;  // frame pointers only: the callers are not on the stack
        const json* l = at(m);
        REQUIRE(l);
        CHECK((*l)["bytes"] == DEEP_CHAIN_SIZE);
        CHECK((*l)["allocs_total"] == 1);
    }
    const json* inl = at("make_node");
    REQUIRE(inl);
    CHECK((*inl)["bytes"] == DEEP_NEW_SIZE);
    CHECK((*inl)["function"].get<std::string>().find("make_node") != std::string::npos);
    if (kernel_has_unwinder()) {
        const json* m = at("main");
        REQUIRE(m);
        CHECK((*m)["bytes"].get<long long>() >= DEEP_CHAIN_SIZE + DEEP_NEW_SIZE + DEEP_LIB_SIZE);
        // Sorted by line.
        int prev = 0;
        for (const auto& l : lines["lines"]) {
            CHECK(l["line"].get<int>() > prev);
            prev = l["line"].get<int>();
        }
    }
}
