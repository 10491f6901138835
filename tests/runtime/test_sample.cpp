// --sample BYTES: byte-sampled heap tracing (docs/hot-path.md, "Sampled heap
// tracing"). sample_sites (tests/progs/sample_sites.c) has three sites of one
// block size each; sampled at T = 64 KiB every site's estimates must be
// within 4 standard deviations of the truth, and without --sample exact.
//
// The bound. Each block of size s is sampled independently (the countdown
// is a Poisson process over bytes, memoryless) with p = 1 - exp(-s/T) and
// then weighted s/p bytes and 1/p objects. For n blocks the byte estimate's
// variance is n s^2 (1-p)/p (sqrt(T B) for B = n s bytes in blocks much
// smaller than T), the object estimate's n (1-p)/p. Per site and figure the
// test allows 4 sigma plus 1 for the rounding of each estimate to an integer.
// Sigma of the sites, outstanding bytes (T = 65536):
//   sample_small: 32768 x 1 KiB, p = 0.0155: sigma 1.46 MiB of 32 MiB (4.6%)
//   sample_mid:   128 x 64 KiB,  p = 0.632:  sigma 0.55 MiB of 8 MiB (6.7%)
//   sample_big:   4 x 1 MiB,     p = 1 - 1.1e-7: sigma 0.7 KiB of 4 MiB
// 4 sigma is exceeded with probability 6e-5 per figure (normal tails; the
// binomial counts here are close to normal), about 1e-3 for each of the two
// sampled runs: no fixed seed is needed (none can be set in BPF).
//
// `--sample -- CMD` samples in-process: memtop preloads its sampler
// (user/sampler/sampler.c) and probes only its two probe points; with
// --kernel-sampling the allocator's probes sample, as for -p. Both paths
// must give the same estimates, so each test runs on both.
#include <cmath>

#include <catch2/catch.hpp>

#include "expect.h"
#include "harness.h"

using namespace rt;

namespace {

constexpr long long kT = 65536;

struct SampleSite {
    const char* function;
    long long n_kept, n_total, size;
};

const SampleSite kSites[] = {
    {"sample_small", SAMPLE_SMALL_N / 2, SAMPLE_SMALL_N, SAMPLE_SMALL_SIZE},
    {"sample_mid", SAMPLE_MID_N, SAMPLE_MID_N, SAMPLE_MID_SIZE},
    {"sample_big", SAMPLE_BIG_N, SAMPLE_BIG_N, SAMPLE_BIG_SIZE},
};

double p_of(long long size) {
    return -std::expm1(-static_cast<double>(size) / kT);
}

// 4 sigma of the estimate of n blocks' bytes (weight size/p) or count (weight 1/p).
double bound(long long n, long long size, bool bytes) {
    double p = p_of(size), w = bytes ? static_cast<double>(size) : 1.0;
    return 4.0 * w * std::sqrt(static_cast<double>(n) * (1.0 - p) / p) + 1.0;
}

void check_within(const char* what, long long got, long long truth, double tolerance) {
    INFO(what << ": estimate " << got << ", truth " << truth << ", 4 sigma " << tolerance);
    CHECK(std::fabs(static_cast<double>(got - truth)) <= tolerance);
}

// err: the run's stderr lines (what memtop said it attached).
void sampled_sites(const std::vector<std::string>& extra, std::vector<std::string>* err = nullptr) {
    RT_REQUIRE_ENV();
    if (!have_prog("sample_sites_fp")) return;
    std::vector<std::string> args = {"--sample", std::to_string(kT)};
    args.insert(args.end(), extra.begin(), extra.end());
    Run r = run_memtop_cmd({prog_path("sample_sites_fp")}, args);
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    check_report_shape(rep);
    REQUIRE(rep.contains("sampling"));
    CHECK(rep["sampling"].value("bytes", 0LL) == kT);
    ProcStats p = proc_by_comm(rep, "sample_sites_fp");
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    for (const auto& site : kSites) {
        INFO("site " << site.function);
        Sum s = sum_frame0(rep, p.pid, site.function);
        check_within("bytes", s.bytes, site.n_kept * site.size, bound(site.n_kept, site.size, true));
        check_within("allocs", s.allocs, site.n_kept, bound(site.n_kept, site.size, false));
        check_within("alloc_bytes_total", s.alloc_bytes_total, site.n_total * site.size,
                     bound(site.n_total, site.size, true));
        check_within("allocs_total", s.allocs_total, site.n_total, bound(site.n_total, site.size, false));
    }
    // The process's estimate is the sum of its stacks' (up to each stack's
    // rounding), so the two views of one heap agree.
    Sum all = sum_all(rep, p.pid);
    CHECK(std::llabs(p.heap_bytes - all.bytes) <= all.stacks + 1);
    CHECK(p.heap_peak_bytes >= p.heap_bytes);
    if (err) *err = r.err_lines;
}

bool said(const std::vector<std::string>& lines, const std::string& what) {
    for (const auto& l : lines)
        if (l.find(what) != std::string::npos) return true;
    return false;
}

// memtop --sample 1 -- CMD, which must end well and say it sampled
// in-process: at --sample 1 the preloaded sampler counts every block.
Run run_sample1_in_process(const std::vector<std::string>& cmd) {
    Run r = run_memtop_cmd(cmd, {"--sample", "1"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    CHECK(said(r.err_lines, "sampled in-process"));
    return r;
}

}  // namespace

// The preloaded sampler: every site within 4 sigma, and the only probes are
// its two probe points, so an unsampled malloc or free takes no trap (the
// allocator itself carries none).
TEST_CASE("--sample 65536 in-process: every site's estimates within 4 sigma, no probe on the allocator",
          "[bpf][sample][cmd][preload]") {
    std::vector<std::string> err;
    sampled_sites({}, &err);
    INFO("stderr:\n"
         << [&] {
                std::string all;
                for (const auto& l : err) all += l + "\n";
                return all;
            }());
    CHECK(said(err, "1 libraries, 2 probes, sampled in-process"));
}

TEST_CASE("--sample 65536 --kernel-sampling: every site's estimates within 4 sigma, marked as estimates",
          "[bpf][sample][cmd]") {
    std::vector<std::string> err;
    sampled_sites({"--kernel-sampling"}, &err);
    CHECK_FALSE(said(err, "sampled in-process"));
}

// A static program cannot load the sampler: the probes sample, said once.
TEST_CASE("--sample -- a static program falls back to sampling in the probes", "[bpf][sample][cmd][preload]") {
    RT_REQUIRE_ENV();
    if (!have_prog("c_sites_static")) return;
    Run r = run_memtop_cmd({prog_path("c_sites_static")}, {"--sample", "4096"});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    CHECK(said(r.err_lines, "statically linked, so nothing can be preloaded"));
    CHECK_FALSE(said(r.err_lines, "sampled in-process"));
    ProcStats p = proc_by_comm(*r.final_report, "c_sites_static");
    REQUIRE(p.found);
    CHECK(p.allocs_total > 0);
}

// The compat build (Linux 5.10) keeps the countdown in its per-thread hash.
TEST_CASE("--sample 65536 in the compat BPF build", "[bpf][sample][cmd][compat]") {
    sampled_sites({"--compat-bpf", "--no-uprobe-multi", "--kernel-sampling"});
}

// The sampler's probe points in the compat build, by perf-event uprobes.
TEST_CASE("--sample 65536 in-process in the compat BPF build", "[bpf][sample][cmd][compat][preload]") {
    sampled_sites({"--compat-bpf", "--no-uprobe-multi"});
}

// Without uprobe sessions every call's return is trapped (Linux 6.6-6.12).
TEST_CASE("--sample 65536 without uprobe sessions", "[bpf][sample][cmd][fallback]") {
    sampled_sites({"--no-uprobe-session", "--kernel-sampling"});
}

TEST_CASE("without --sample the same sites are exact and not marked", "[bpf][sample][cmd][host]") {
    RT_REQUIRE_ENV();
    if (!have_prog("sample_sites_fp")) return;
    Run r = run_memtop_cmd({prog_path("sample_sites_fp")});
    INFO(r.diag);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.final_report);
    const json& rep = *r.final_report;
    CHECK_FALSE(rep.contains("sampling"));
    ProcStats p = proc_by_comm(rep, "sample_sites_fp");
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    for (const auto& site : kSites) {
        INFO("site " << site.function);
        Sum s = sum_frame0(rep, p.pid, site.function);
        CHECK(s.bytes == site.n_kept * site.size);
        CHECK(s.allocs == site.n_kept);
        CHECK(s.alloc_bytes_total == site.n_total * site.size);
        CHECK(s.allocs_total == site.n_total);
    }
}

// --sample 1 samples every block of more than a few bytes (p(32) = 1 -
// 1e-14): the preloaded sampler then counts exactly, which checks its set of
// sampled blocks with eight threads allocating and freeing at once.
TEST_CASE("--sample 1 in-process: threads' sites exact", "[bpf][sample][cmd][preload][threads]") {
    RT_REQUIRE_ENV();
    const std::string target = "threads_nofp";
    if (!have_prog(target)) return;
    Run r = run_sample1_in_process({prog_path(target)});
    INFO(r.diag);
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, target);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    Sum keep = sum_frame0(rep, p.pid, "thread_keep");
    CHECK(keep.bytes == THR_TOTAL_BYTES);
    CHECK(keep.allocs == THR_TOTAL_ALLOCS);
    CHECK(keep.allocs_total == THR_TOTAL_ALLOCS);
    CHECK(sum_frame0(rep, p.pid, "thread_temp").stacks == 0);  // all freed
    // Every call and every free, each thread's libc block included.
    CHECK(p.allocs_total == THR_ALLOCS_TOTAL + THR_N * THR_LIBC_ALLOCS_PER_THREAD);
    CHECK(p.frees_total == THR_FREES_TOTAL + THR_N * THR_LIBC_ALLOCS_PER_THREAD);
    CHECK(p.heap_bytes == THR_TOTAL_BYTES);
}

// More live sampled blocks than the sampler's set holds: what it could not
// hold is not reported (memtop would never see it freed) but counted, and
// the count reaches the final report: reported + lost = every block.
TEST_CASE("--sample 1 in-process: blocks the sampler's set cannot hold are counted as lost",
          "[bpf][sample][cmd][preload][lost]") {
    RT_REQUIRE_ENV();
    const std::string target = "sample_sites_fp";
    if (!have_prog(target)) return;
    Run r = run_sample1_in_process({prog_path(target), "--many"});
    INFO(r.diag);
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, target);
    REQUIRE(p.found);
    Sum many = sum_frame0(rep, p.pid, "sample_many");
    REQUIRE(rep.contains("lost"));
    const long long lost = rep["lost"].value("sampler_set_full", 0LL);
    INFO("reported " << many.allocs << ", lost " << lost);
    CHECK(lost > 0);
    CHECK(many.allocs + lost == SAMPLE_MANY_N);
    CHECK(many.bytes == many.allocs * SAMPLE_MANY_SIZE);
}

// The program CMD execs inherits the preload and is sampled the same way.
TEST_CASE("--sample 1 in-process across exec", "[bpf][sample][cmd][preload][exec]") {
    RT_REQUIRE_ENV();
    const std::string target = "forker_fp";
    if (!have_prog(target)) return;
    Run r = run_sample1_in_process({prog_path(target), "--exec"});
    INFO(r.diag);
    CHECK_FALSE(said(r.err_lines, "sampler is not loaded"));
    const json& rep = *r.final_report;
    ProcStats p = proc_by_comm(rep, target);
    REQUIRE(p.found);
    INFO(describe_stacks(rep, p.pid));
    CHECK(sum_frame0(rep, p.pid, "pre_exec_site").stacks == 0);
    Sum post = sum_frame0(rep, p.pid, "post_exec_site");
    CHECK(post.bytes == EXEC_POST_SIZE);
    CHECK(post.allocs == 1);
}
