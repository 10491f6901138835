// Queries on memtop's NDJSON reports for the runtime tests: the documented
// shape of a report, a process's entry, its stacks selected by frame and
// summed, and compact descriptions for failure messages.
#include "reports.h"

#include <cctype>
#include <climits>
#include <sstream>

#include <catch2/catch.hpp>

#include "process.h"  // starts_with

namespace rt {

static long long num(const json& j, const char* key);

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
    const long long stack_map_full =
        r.contains("lost") && r["lost"].is_object() ? r["lost"].value("stack_map_full", 0LL) : 0;
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
        // A stack without frames is one whose bytes were kept when the stack
        // map was full (a busy host under --heap-all fills it in seconds):
        // only then, and the report must count it.
        if (s["frames"].empty()) CHECK(stack_map_full > 0);
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

std::string fn_of(const json& frame) {
    if (!frame.is_object()) return "<bad frame>";
    auto it = frame.find("function");
    if (it == frame.end() || !it->is_string()) return "?";
    return it->get<std::string>();
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

const json* stack_with_bytes(const json& report, int pid, long long bytes) {
    for (const json* st : stacks_of(report, pid))
        if ((*st)["bytes"].get<long long>() == bytes) return st;
    return nullptr;
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
            // Which file the frame was looked up in: none means memtop had no
            // maps of the process when it named the stack.
            if (f[0].contains("module") && f[0]["module"].is_string()) o << " in " << f[0]["module"].get<std::string>();
            if (f[0].contains("file") && f[0]["file"].is_string()) o << " " << f[0]["file"].get<std::string>();
            if (f[0].contains("line") && f[0]["line"].is_number_integer()) o << ":" << f[0]["line"].get<long long>();
            o << "]";
        }
    }
    // Why frames are unnamed, when memtop had no maps to name them with.
    if (report.contains("symbol_files") && report["symbol_files"].is_array())
        for (const auto& n : report["symbol_files"])
            if (n.value("file", std::string()) == "/proc/" + std::to_string(pid) + "/maps")
                o << "\n  maps: " << n.value("problem", std::string());
    return o.str();
}

}  // namespace rt
