// /metrics: the exposition of a report (views/metrics.cpp). Prometheus and
// promtool read the real thing in tests/runtime/test_serve.cpp; these pin
// down the names, the grouping, the bound and the escaping.
#include <catch2/catch.hpp>

#include <sstream>

#include "views/metrics.h"

using namespace memtop;

namespace {

ProcessStats proc(uint32_t pid, const std::string& comm, int64_t anon, int64_t heap) {
    ProcessStats p;
    p.pid = pid;
    p.epoch = 1;
    p.comm = comm;
    p.heap_bytes = heap;
    p.heap_peak_bytes = heap * 2;
    p.allocs_total = 10;
    p.frees_total = 4;
    p.rss = RssStats{};
    p.rss->anon = anon;
    p.rss->file = 1000;
    p.rss->shmem = 10;
    p.rss->swap = 7;
    p.rss->peak = anon + 2000;
    p.has_identity = true;
    p.cgroup = "/system.slice/a.service";
    return p;
}

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l == line) return true;
    return false;
}

}  // namespace

TEST_CASE("label values are escaped and made valid UTF-8", "[metrics]") {
    CHECK(escape_label_value("plain") == "plain");
    CHECK(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    CHECK(escape_label_value("caf\xc3\xa9") == "caf\xc3\xa9");                            // valid UTF-8 is kept
    CHECK(escape_label_value("x\xffy") == "x\xef\xbf\xbdy");                              // a stray byte
    CHECK(escape_label_value("ab\xe2\x82") == "ab\xef\xbf\xbd\xef\xbf\xbd");              // comm cut inside a character
    CHECK(escape_label_value("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong '/'
    CHECK(escape_label_value("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
}

TEST_CASE("the Accept header chooses OpenMetrics or the 0.0.4 text", "[metrics]") {
    CHECK(metrics_format("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1") == MetricsFormat::OpenMetrics);
    CHECK(metrics_format("text/plain;version=0.0.4") == MetricsFormat::Prometheus);
    CHECK(metrics_format("") == MetricsFormat::Prometheus);
}

TEST_CASE("metrics: processes sharing labels add up, exited ones go, lost counters all appear", "[metrics]") {
    Report r;
    r.processes.push_back(proc(10, "wo\"rk\\er", 4096, 300));
    r.processes.push_back(proc(11, "wo\"rk\\er", 8192, 200));
    auto gone = proc(12, "gone", 1 << 20, 5);
    gone.exited = true;
    r.processes.push_back(gone);
    auto untraced = proc(13, "idle", 100, 0);
    untraced.heap_traced = false;
    r.processes.push_back(untraced);
    r.lost[Lost::events_lost] = 3;
    r.self.cpu_seconds = 1.5;
    r.self.rss_bytes = 123;
    r.self.rss_anon_bytes = 100;

    std::string t = render_metrics(r, {}, MetricsFormat::Prometheus);
    std::string worker = R"(comm="wo\"rk\\er",container="",cgroup="/system.slice/a.service")";
    CHECK(has_line(t, "memtop_processes{" + worker + "} 2"));
    CHECK(has_line(t, "memtop_process_heap_bytes{" + worker + "} 500"));
    CHECK(has_line(t, "memtop_process_heap_peak_bytes{" + worker + "} 1000"));
    CHECK(has_line(t, "memtop_process_resident_bytes{" + worker + ",kind=\"anon\"} 12288"));
    CHECK(has_line(t, "memtop_process_resident_bytes{" + worker + ",kind=\"file\"} 2000"));
    CHECK(has_line(t, "memtop_process_resident_bytes{" + worker + ",kind=\"shmem\"} 20"));
    CHECK(has_line(t, "memtop_process_swap_bytes{" + worker + "} 14"));
    CHECK(has_line(t, "# TYPE memtop_process_allocations_total counter"));
    CHECK(has_line(t, "memtop_process_allocations_total{" + worker + "} 20"));
    CHECK(has_line(t, "memtop_process_frees_total{" + worker + "} 8"));
    CHECK(has_line(t, "# TYPE memtop_process_heap_bytes gauge"));
    CHECK(has_line(t, "memtop_cpu_seconds_total 1.5"));
    CHECK(has_line(t, "memtop_resident_bytes 123"));
    CHECK(has_line(t, "memtop_resident_anon_bytes 100"));
    CHECK(has_line(t, "memtop_lost_total{reason=\"events_lost\"} 3"));
    for (const auto& k : kLostKinds)
        CHECK(t.find("memtop_lost_total{reason=\"" + std::string(k.name) + "\"}") != std::string::npos);
    CHECK(t.find("gone") == std::string::npos);  // exited: its series end
    // A process whose heap is not traced has resident series only.
    CHECK(t.find("memtop_process_resident_bytes{comm=\"idle\"") != std::string::npos);
    CHECK(t.find("memtop_process_heap_bytes{comm=\"idle\"") == std::string::npos);
    CHECK(t.find("# EOF") == std::string::npos);
    CHECK(t.find("# UNIT") == std::string::npos);  // not in 0.0.4
}

TEST_CASE("metrics: OpenMetrics names counter families without _total, states units, ends with EOF", "[metrics]") {
    Report r;
    r.processes.push_back(proc(10, "a", 4096, 300));
    std::string t = render_metrics(r, {}, MetricsFormat::OpenMetrics);
    CHECK(has_line(t, "# TYPE memtop_process_allocations counter"));
    CHECK(has_line(
        t, "memtop_process_allocations_total{comm=\"a\",container=\"\",cgroup=\"/system.slice/a.service\"} 10"));
    CHECK(has_line(t, "# TYPE memtop_cpu_seconds counter"));
    CHECK(has_line(t, "# UNIT memtop_cpu_seconds seconds"));
    CHECK(has_line(t, "# UNIT memtop_process_heap_bytes bytes"));
    CHECK(has_line(t, "# TYPE memtop_lost counter"));
    REQUIRE(t.size() >= 6);
    CHECK(t.substr(t.size() - 6) == "# EOF\n");
}

TEST_CASE("metrics: the pid label splits processes; the bound keeps the largest resident", "[metrics]") {
    Report r;
    r.processes.push_back(proc(10, "w", 4096, 1));
    r.processes.push_back(proc(11, "w", 8192, 2));
    r.processes.push_back(proc(12, "w", 100, 3));
    MetricsOptions o;
    o.pid_label = true;
    o.max_processes = 2;
    std::string t = render_metrics(r, o, MetricsFormat::Prometheus);
    std::string base = R"(comm="w",container="",cgroup="/system.slice/a.service")";
    CHECK(has_line(t, "memtop_process_heap_bytes{" + base + ",pid=\"10\"} 1"));
    CHECK(has_line(t, "memtop_process_heap_bytes{" + base + ",pid=\"11\"} 2"));
    CHECK(t.find("pid=\"12\"") == std::string::npos);  // the smallest resident set is left out
    CHECK(has_line(t, "memtop_metrics_processes_omitted 1"));
}

TEST_CASE("metrics: the Python domain's gauges and counters, only for processes that have one", "[metrics][python]") {
    Report r;
    auto py = proc(10, "python3.11", 4096, 300);
    py.py_bytes = 3200, py.py_peak_bytes = 6400, py.py_allocs_total = 200, py.py_frees_total = 100;
    r.processes.push_back(py);
    r.processes.push_back(proc(11, "app", 4096, 300));
    std::string t = render_metrics(r, {}, MetricsFormat::Prometheus);
    std::string labels = R"(comm="python3.11",container="",cgroup="/system.slice/a.service")";
    CHECK(has_line(t, "# TYPE memtop_process_python_bytes gauge"));
    CHECK(has_line(t, "memtop_process_python_bytes{" + labels + "} 3200"));
    CHECK(has_line(t, "memtop_process_python_peak_bytes{" + labels + "} 6400"));
    CHECK(has_line(t, "memtop_process_python_allocations_total{" + labels + "} 200"));
    CHECK(has_line(t, "memtop_process_python_frees_total{" + labels + "} 100"));
    // The heap's series are the heap's alone.
    CHECK(has_line(t, "memtop_process_heap_bytes{" + labels + "} 300"));
    CHECK(t.find("memtop_process_python_bytes{comm=\"app\"") == std::string::npos);
    // No Python process: no Python family at all.
    r.processes.erase(r.processes.begin());
    CHECK(render_metrics(r, {}, MetricsFormat::Prometheus).find("python") == std::string::npos);
}
