#include "views/metrics.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

namespace memtop {

namespace {

struct Sample {
    std::string labels;  // `a="x",b="y"`, or empty
    std::string value;
};

struct Family {
    std::string name;  // the family; a counter's samples add `_total`
    const char* type;  // gauge, counter
    const char* unit;  // OpenMetrics UNIT, the name's suffix; "" for none
    const char* help;
    std::vector<Sample> samples;
};

std::string number(int64_t v) {
    return std::to_string(v);
}
std::string number(uint64_t v) {
    return std::to_string(v);
}
std::string number(double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// Length of the valid UTF-8 sequence at s[i], 0 if it is not one.
size_t utf8_length(const std::string& s, size_t i) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;  // the first continuation byte's range
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;  // overlong
        if (c == 0xed) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;  // overlong
        if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else
        return 0;
    if (i + n > s.size()) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if ((b(i + k) & 0xc0) != 0x80) return 0;
    return n;
}

// What one label set adds up to: without the pid label, every live process
// sharing comm, container and cgroup (threads of a pool, forked workers).
struct Group {
    int64_t processes = 0;
    bool rss = false;
    int64_t anon = 0, file = 0, shmem = 0, swap = 0, peak = 0, growth = 0;
    bool heap = false;
    int64_t heap_bytes = 0, heap_peak = 0;
    uint64_t allocs = 0, frees = 0;
    bool mapped = false;
    int64_t mapped_bytes = 0, mapped_peak = 0;
    bool python = false;  // Python's object domain (--python-objects), apart from the heap
    int64_t py_bytes = 0, py_peak = 0;
    uint64_t py_allocs = 0, py_frees = 0;
};

std::string label(const char* name, const std::string& value) {
    return std::string(name) + "=\"" + escape_label_value(value) + "\"";
}

void render(std::string& out, const Family& f, MetricsFormat fmt) {
    if (f.samples.empty()) return;
    bool counter = std::string(f.type) == "counter";
    std::string sample_name = counter ? f.name + "_total" : f.name;
    // 0.0.4 names the family by its samples' name; OpenMetrics by the
    // family's, which a counter's samples extend with `_total`.
    const std::string& family = fmt == MetricsFormat::OpenMetrics ? f.name : sample_name;
    out += "# TYPE " + family + " " + f.type + "\n";
    if (fmt == MetricsFormat::OpenMetrics && *f.unit) out += "# UNIT " + family + " " + f.unit + "\n";
    out += "# HELP " + family + " " + f.help + "\n";
    for (const auto& s : f.samples) {
        out += sample_name;
        if (!s.labels.empty()) out += "{" + s.labels + "}";
        out += " " + s.value + "\n";
    }
}

}  // namespace

std::string escape_label_value(const std::string& v) {
    std::string out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size();) {
        size_t n = utf8_length(v, i);
        if (n == 0) {
            out += "\xef\xbf\xbd";  // U+FFFD: the formats require UTF-8
            i++;
            continue;
        }
        char c = v[i];
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.append(v, i, n);
        i += n;
    }
    return out;
}

MetricsFormat metrics_format(const std::string& accept) {
    // Prometheus lists OpenMetrics first when it can read it, and the 0.0.4
    // text only as a fallback; anyone else gets the 0.0.4 text.
    return accept.find("application/openmetrics-text") != std::string::npos ? MetricsFormat::OpenMetrics
                                                                            : MetricsFormat::Prometheus;
}

std::string render_metrics(const Report& r, const MetricsOptions& o, MetricsFormat fmt) {
    // Exited processes are left out, so their series end (Prometheus marks
    // them stale); the rest are bounded, largest resident (then heap) first.
    std::vector<const ProcessStats*> live;
    for (const auto& p : r.processes)
        if (!p.exited) live.push_back(&p);
    std::sort(live.begin(), live.end(), [](const ProcessStats* a, const ProcessStats* b) {
        int64_t ra = a->rss ? a->rss->resident() : 0, rb = b->rss ? b->rss->resident() : 0;
        if (ra != rb) return ra > rb;
        if (a->heap_bytes != b->heap_bytes) return a->heap_bytes > b->heap_bytes;
        return a->pid < b->pid;
    });
    size_t omitted = live.size() > o.max_processes ? live.size() - o.max_processes : 0;
    live.resize(live.size() - omitted);

    std::map<std::string, Group> groups;
    for (const auto* p : live) {
        std::string key = label("comm", p->comm) + "," + label("container", p->container.value_or("")) + "," +
                          label("cgroup", p->cgroup);
        if (o.pid_label) key += "," + label("pid", std::to_string(p->pid));
        Group& g = groups[key];
        g.processes++;
        if (p->rss) {
            g.rss = true;
            g.anon += p->rss->anon;
            g.file += p->rss->file;
            g.shmem += p->rss->shmem;
            g.swap += p->rss->swap;
            g.peak += p->rss->peak;
            g.growth += p->growth_bytes;
        }
        if (p->heap_traced) {
            g.heap = true;
            g.heap_bytes += p->heap_bytes;
            g.heap_peak += p->heap_peak_bytes;
            g.allocs += p->allocs_total;
            g.frees += p->frees_total;
        }
        if (p->py_allocs_total || p->py_frees_total) {
            g.python = true;
            g.py_bytes += p->py_bytes;
            g.py_peak += p->py_peak_bytes;
            g.py_allocs += p->py_allocs_total;
            g.py_frees += p->py_frees_total;
        }
        if (p->mapped_known) {
            g.mapped = true;
            g.mapped_bytes += p->mapped_bytes;
            g.mapped_peak += p->mapped_peak_bytes;
        }
    }

    Family processes{"memtop_processes", "gauge", "", "Live processes exported under this label set.", {}};
    Family resident{"memtop_process_resident_bytes",
                    "gauge",
                    "bytes",
                    "Resident memory by kind (anon, file, shmem); their sum is the resident set.",
                    {}};
    Family swap{"memtop_process_swap_bytes", "gauge", "bytes", "Swapped-out memory.", {}};
    Family peak{"memtop_process_resident_peak_bytes",
                "gauge",
                "bytes",
                "Highest resident set since memtop started watching.",
                {}};
    Family growth{"memtop_process_growth_bytes",
                  "gauge",
                  "bytes",
                  "Resident bytes gained over the last report interval (negative: released).",
                  {}};
    Family heap{"memtop_process_heap_bytes", "gauge", "bytes", "Heap bytes allocated and not freed.", {}};
    Family heap_peak{"memtop_process_heap_peak_bytes", "gauge", "bytes", "Highest heap bytes outstanding.", {}};
    Family allocs{"memtop_process_allocations", "counter", "", "Heap allocations seen.", {}};
    Family frees{"memtop_process_frees", "counter", "", "Heap frees seen.", {}};
    Family py{"memtop_process_python_bytes",
              "gauge",
              "bytes",
              "Python objects (pymalloc's blocks) allocated and not freed; not in the heap bytes.",
              {}};
    Family py_peak{
        "memtop_process_python_peak_bytes", "gauge", "bytes", "Highest Python object bytes outstanding.", {}};
    Family py_allocs{"memtop_process_python_allocations", "counter", "", "Python objects allocated.", {}};
    Family py_frees{"memtop_process_python_frees", "counter", "", "Python objects freed.", {}};
    Family mapped{"memtop_process_mapped_bytes",
                  "gauge",
                  "bytes",
                  "Anonymous memory mapped (mmap, mremap, brk) while memtop watched, still mapped.",
                  {}};
    Family mapped_peak{"memtop_process_mapped_peak_bytes", "gauge", "bytes", "Highest anonymous memory mapped.", {}};
    for (const auto& [key, g] : groups) {
        processes.samples.push_back({key, number(g.processes)});
        if (g.rss) {
            resident.samples.push_back({key + ",kind=\"anon\"", number(g.anon)});
            resident.samples.push_back({key + ",kind=\"file\"", number(g.file)});
            resident.samples.push_back({key + ",kind=\"shmem\"", number(g.shmem)});
            swap.samples.push_back({key, number(g.swap)});
            peak.samples.push_back({key, number(g.peak)});
            growth.samples.push_back({key, number(g.growth)});
        }
        if (g.heap) {
            heap.samples.push_back({key, number(g.heap_bytes)});
            heap_peak.samples.push_back({key, number(g.heap_peak)});
            allocs.samples.push_back({key, number(g.allocs)});
            frees.samples.push_back({key, number(g.frees)});
        }
        if (g.python) {
            py.samples.push_back({key, number(g.py_bytes)});
            py_peak.samples.push_back({key, number(g.py_peak)});
            py_allocs.samples.push_back({key, number(g.py_allocs)});
            py_frees.samples.push_back({key, number(g.py_frees)});
        }
        if (g.mapped) {
            mapped.samples.push_back({key, number(g.mapped_bytes)});
            mapped_peak.samples.push_back({key, number(g.mapped_peak)});
        }
    }

    Family omitted_f{"memtop_metrics_processes_omitted",
                     "gauge",
                     "",
                     "Live processes left out by --metrics-max-processes.",
                     {{"", number(uint64_t{omitted})}}};
    Family lost{"memtop_lost", "counter", "", "What memtop could not record, by reason (bpf/lost_counters.def).", {}};
    for (const auto& k : kLostKinds) lost.samples.push_back({label("reason", k.name), number(r.lost[k.kind])});
    Family cpu{"memtop_cpu_seconds",
               "counter",
               "seconds",
               "memtop's own CPU time, user and system.",
               {{"", number(r.self.cpu_seconds)}}};
    Family self_rss{"memtop_resident_bytes",
                    "gauge",
                    "bytes",
                    "memtop's own resident memory, its helper processes' included.",
                    {{"", number(r.self.rss_bytes)}}};
    Family self_anon{"memtop_resident_anon_bytes",
                     "gauge",
                     "bytes",
                     "Of memtop's resident memory, the anonymous part: the rest is its files mapped.",
                     {{"", number(r.self.rss_anon_bytes)}}};
    Family kernel{"memtop_kernel_memory_bytes",
                  "gauge",
                  "bytes",
                  "Kernel memory of memtop's BPF maps.",
                  {{"", number(r.self.kernel_bytes)}}};
    Family probes{
        "memtop_probes", "gauge", "", "Uprobes attached (entry and return).", {{"", number(uint64_t{r.self.probes})}}};
    double t = std::chrono::duration<double>(r.time.time_since_epoch()).count();
    Family when{"memtop_report_timestamp_seconds",
                "gauge",
                "seconds",
                "When the report served was made (a new one comes every -d seconds).",
                {{"", number(t)}}};

    std::string out;
    for (const Family* f : {&processes, &resident, &swap,     &peak,      &growth,   &heap,   &heap_peak,   &allocs,
                            &frees,     &py,       &py_peak,  &py_allocs, &py_frees, &mapped, &mapped_peak, &omitted_f,
                            &lost,      &cpu,      &self_rss, &self_anon, &kernel,   &probes, &when})
        render(out, *f, fmt);
    if (fmt == MetricsFormat::OpenMetrics) out += "# EOF\n";
    return out;
}

}  // namespace memtop
