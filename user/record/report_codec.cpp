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
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Frame, address, function, offset, module, file, line, inlined, mapping)
// With defaults: recordings made before the temporary counts read on.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StackStats, pid, epoch, stack_id, bytes, allocs, alloc_bytes_total,
                                                allocs_total, temp_allocs, temp_bytes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AgeBucket, max_seconds, bytes, allocs)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReportStack, stats, ips, frames, truncated, complete, ages)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SelfStats, rss_bytes, cpu_seconds, cpu_percent, probes, kernel_bytes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UnwindSummary, tables, stacks, incomplete, incomplete_by_module, table_files,
                                   table_rows, table_capacity, table_failed, table_bytes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LineStats, line, function, bytes, allocs, alloc_bytes_total, allocs_total)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LineReport, file, matched, lines)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MemInfo, total, free, available, swap_total, swap_free)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RssStats, file, anon, shmem, swap, peak)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ProcessStats, pid, epoch, comm, heap_bytes, heap_peak_bytes, allocs_total,
                                   frees_total, exited, heap_traced, rss, growth_bytes, growth_rate, growing,
                                   has_identity, cgroup, container, nspid, mapped_known, mapped_bytes,
                                   mapped_peak_bytes, mm_id)

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
            {"sample_bytes", r.sample_bytes}};  // --sample: heap figures are estimates; 0 exact
}

Report decode_report(const nlohmann::json& j) {
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
        r.sample_bytes = j.value("sample_bytes", uint64_t{0});  // absent in recordings before --sample
        return r;
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(std::string("malformed report: ") + e.what());
    }
}

}  // namespace memtop
