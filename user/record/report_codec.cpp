#include "record/report_codec.h"

#include <optional>
#include <stdexcept>

namespace nlohmann {
// std::optional as null or the value (nlohmann 3.11 has no serializer of
// its own for it).
template <typename T>
struct adl_serializer<std::optional<T>> {
    static void to_json(json& j, const std::optional<T>& v) {
        if (v)
            j = *v;
        else
            j = nullptr;
    }
    static void from_json(const json& j, std::optional<T>& v) {
        if (j.is_null())
            v.reset();
        else
            v = j.get<T>();
    }
};
}  // namespace nlohmann

namespace memtop {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(InlinedFrame, function, file, line)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FrameMapping, start, end, offset, build_id)
NLOHMANN_JSON_SERIALIZE_ENUM(FrameKind, {{FrameKind::Native, "native"}, {FrameKind::Python, "python"}})
// With defaults: recordings made before Python frames read on (native).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Frame, kind, address, function, offset, module, file, line, inlined,
                                                mapping)
// With defaults: recordings made before the temporary counts read on.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StackStats, pid, epoch, stack_id, bytes, allocs, alloc_bytes_total,
                                                allocs_total, temp_allocs, temp_bytes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AgeBucket, max_seconds, bytes, allocs)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StackRemainder, stacks, stats)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReportStack, stats, ips, frames, truncated, complete, ages, used_bytes)
// With defaults: recordings made before python_processes (or rss_anon_bytes) read on (0).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SelfStats, rss_bytes, rss_anon_bytes, cpu_seconds, cpu_percent, probes,
                                                kernel_bytes, python_processes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UnwindSummary, tables, stacks, incomplete, incomplete_by_module, table_files,
                                   table_rows, table_capacity, table_failed, table_bytes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LineStats, line, function, bytes, allocs, alloc_bytes_total, allocs_total)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LineReport, file, matched, lines)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MemInfo, total, free, available, swap_total, swap_free)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RssStats, file, anon, shmem, swap, peak)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PerfMapNote, pid, file, rejected, lines_used, lines_malformed, lines_absurd,
                                   lines_overlapping, bytes_unread)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SymbolFileNote, file, problem)
// With defaults: recordings made before the Python domain's py_* read on (0).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ProcessStats, pid, epoch, comm, heap_bytes, heap_peak_bytes,
                                                allocs_total, frees_total, exited, heap_traced, py_bytes, py_peak_bytes,
                                                py_allocs_total, py_frees_total, py_sampled, rss, growth_bytes,
                                                growth_rate, growing, has_identity, cgroup, container, nspid,
                                                mapped_known, mapped_bytes, mapped_peak_bytes, mm_id)

namespace {

nlohmann::json lost_json(const LostCounters& l) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& k : kLostKinds) out[k.name] = l[k.kind];
    return out;
}

LostCounters lost_of(const nlohmann::json& j) {
    LostCounters l;
    // A counter a newer memtop added is not known here; one this file
    // lacks (an older memtop) stays 0.
    for (const auto& k : kLostKinds)
        if (j.contains(k.name)) l[k.kind] = j.at(k.name).get<uint64_t>();
    return l;
}

// The fields memtop writes as numbers with a fraction; every other number it
// writes is whole.
bool is_fraction_field(const std::string& key) {
    return key == "cpu_seconds" || key == "cpu_percent" || key == "growth_rate" || key == "max_seconds" ||
           key == "min_age";
}

// nlohmann reads "1e35" or "2.5" as a double, and get<> then converts it to
// the integer field with a plain cast: undefined behaviour when it does not
// fit (found by tests/fuzz/fuzz_recording). A recording is input from
// another host, so such a number anywhere but in a fraction field makes the
// report malformed, said as such, before anything is converted.
void check_numbers(const nlohmann::json& j, const std::string& key, int depth = 0) {
    if (depth > 64) throw std::runtime_error("malformed report: nested too deep");
    if (j.is_number_float() && !is_fraction_field(key))
        throw std::runtime_error("malformed report: " + (key.empty() ? std::string("a value") : key) +
                                 " is not a whole number");
    if (j.is_object())
        for (const auto& [k, v] : j.items()) check_numbers(v, k, depth + 1);
    else if (j.is_array())
        for (const auto& v : j) check_numbers(v, key, depth + 1);
}

}  // namespace

nlohmann::json encode_report(const Report& r) {
    return {{"time_ns", std::chrono::duration_cast<std::chrono::nanoseconds>(r.time.time_since_epoch()).count()},
            {"final", r.final},
            {"self", r.self},
            {"host", r.host},
            {"processes", r.processes},
            {"stacks", r.stacks},
            {"growth_stacks", r.growth_stacks},
            {"mappings", r.mappings},
            {"lost", lost_json(r.lost)},
            {"unwind", r.unwind},
            {"lines", r.lines},
            {"all_stacks", r.all_stacks},
            {"stack_order", stack_order_name(r.stack_order)},
            {"min_age", r.min_age},
            {"perf_maps", r.perf_maps},
            {"symbol_files", r.symbol_files},
            {"python_notes", r.python_notes},
            // Python's object domain (--python-objects): absent in recordings before it.
            {"python",
             {{"stacks", r.python_stacks},
              {"all_stacks", r.all_python_stacks},
              {"rest", r.python_rest},
              {"sites", r.python_sites},
              {"sites_skipped", r.python_sites_skipped},
              {"estimates", r.python_sampled}}},
            {"sample_bytes", r.sample_bytes}};  // --sample: heap figures are estimates; 0 exact
}

Report decode_report(const nlohmann::json& j) {
    check_numbers(j, "");
    try {
        Report r;
        r.time = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(j.at("time_ns").get<int64_t>())));
        r.final = j.at("final").get<bool>();
        r.self = j.at("self").get<SelfStats>();
        r.host = j.at("host").get<std::optional<MemInfo>>();
        r.processes = j.at("processes").get<std::vector<ProcessStats>>();
        r.stacks = j.at("stacks").get<std::vector<ReportStack>>();
        r.growth_stacks = j.at("growth_stacks").get<std::vector<ReportStack>>();
        r.mappings = j.at("mappings").get<std::vector<ReportStack>>();
        r.lost = lost_of(j.at("lost"));
        r.unwind = j.at("unwind").get<UnwindSummary>();
        r.lines = j.at("lines").get<std::optional<LineReport>>();
        r.all_stacks = j.at("all_stacks").get<std::vector<ReportStack>>();
        if (auto order = parse_stack_order(j.value("stack_order", std::string("outstanding")))) r.stack_order = *order;
        if (j.contains("min_age")) r.min_age = j.at("min_age").get<std::optional<double>>();
        // What symbolization refused or could not read: absent from the
        // recordings of a memtop before them.
        if (j.contains("perf_maps")) r.perf_maps = j.at("perf_maps").get<std::vector<PerfMapNote>>();
        if (j.contains("symbol_files")) r.symbol_files = j.at("symbol_files").get<std::vector<SymbolFileNote>>();
        if (j.contains("python_notes")) r.python_notes = j.at("python_notes").get<std::vector<std::string>>();
        r.sample_bytes = j.value("sample_bytes", uint64_t{0});  // absent in recordings before --sample
        if (j.contains("python")) {
            const auto& py = j.at("python");
            r.python_stacks = py.at("stacks").get<std::vector<ReportStack>>();
            r.all_python_stacks = py.at("all_stacks").get<std::vector<ReportStack>>();
            // Absent in recordings whose all_stacks listed every stack.
            if (py.contains("rest")) r.python_rest = py.at("rest").get<std::vector<StackRemainder>>();
            r.python_sites = py.at("sites").get<size_t>();
            r.python_sites_skipped = py.at("sites_skipped").get<size_t>();
            r.python_sampled = py.at("estimates").get<bool>();
        }
        return r;
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(std::string("malformed report: ") + e.what());
    }
}

}  // namespace memtop

namespace memtop {

std::vector<ProcessStats> decode_processes(const nlohmann::json& j) {
    try {
        const auto& procs = j.at("processes");
        check_numbers(procs, "processes");
        return procs.get<std::vector<ProcessStats>>();
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(std::string("malformed report: ") + e.what());
    }
}

}  // namespace memtop
