// Probe placement in the confined worker memtop-cfi (request 'P',
// kernel/unwind/cfi_worker.h, attach/file_plan.h): the same plans as made
// in-process for every allocator library of this host, the checks memtop
// makes of a reply, and what a library that crashes or hangs the worker
// costs (that library's probes, nothing else).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "attach/elf_image.h"
#include "attach/file_plan.h"
#include "kernel/unwind/cfi_worker.h"
#include "util/errors.h"
#include "util/unique_fd.h"

using namespace memtop;

namespace {

constexpr const char* kLibc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
constexpr const char* kLibstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
constexpr const char* kPython = "/usr/bin/python3.11";

// Every allocator library installed here: glibc's, libstdc++, jemalloc,
// tcmalloc's variants, mimalloc, CPython's library and executable (the
// pymalloc sites).
std::vector<std::string> allocator_files() {
    std::vector<std::string> out;
    for (const char* name : {"libc.so.6", "libstdc++.so.6", "libjemalloc.so.2", "libtcmalloc.so.4",
                             "libtcmalloc_minimal.so.4", "libtcmalloc_debug.so.4", "libtcmalloc_minimal_debug.so.4",
                             "libtcmalloc_and_profiler.so.4", "libmimalloc.so.2", "libpython3.11.so.1.0"}) {
        const std::string path = std::string("/usr/lib/x86_64-linux-gnu/") + name;
        if (access(path.c_str(), R_OK) == 0) out.push_back(path);
    }
    if (access(kPython, R_OK) == 0) out.push_back(kPython);
    return out;
}

bool is_python(const std::string& path) {
    return path.find("python") != std::string::npos;
}

std::string encoded(const FilePlan& p) {
    wire::Writer w('x');
    encode_plan(w, p);
    return w.bytes();
}

FilePlan in_process(const std::string& path, PlanKind kind) {
    return make_plan(*ElfImage::open(path), kind);
}

// decode_plan's verdict on `p` as a reply for a file of `size` bytes.
std::string verdict(const FilePlan& p, uint64_t size, const std::string& tail = "") {
    const std::string bytes = encoded(p) + tail;
    wire::Reader r(bytes);
    r.type();
    FilePlan out;
    return decode_plan(r, p.kind, size, out);
}

uint64_t file_size(const std::string& path) {
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    return static_cast<uint64_t>(st.st_size);
}

// The seam's hang lasts until the worker's time limit: 4 s, so that the real
// files read before and after it stay well within the limit on a loaded
// host (a sanitized libstdc++ placement beside two TCG guests missed 1 s).
struct Seam {
    Seam(const char* name, const std::string& suffix) : name_(name) {
        setenv(name, suffix.c_str(), 1);
        setenv("MEMTOP_TEST_WORKER_TIMEOUT_MS", "4000", 1);
    }
    ~Seam() {
        unsetenv(name_);
        unsetenv("MEMTOP_TEST_WORKER_TIMEOUT_MS");
        CfiWorker reset;  // forgets the seam for the workers made after
    }
    const char* name_;
};

}  // namespace

TEST_CASE("memtop-cfi plans the same probes as in-process, for every allocator library here", "[privsep][placement]") {
    CfiWorker w;
    const std::vector<std::string> files = allocator_files();
    INFO(files.size() << " files");
    REQUIRE(files.size() >= 3);  // libc, libstdc++ and python3.11 at least
    size_t probed = 0, pymalloc = 0;
    for (const std::string& path : files) {
        for (PlanKind kind : {PlanKind::Probes, PlanKind::Pymalloc}) {
            INFO(path << (kind == PlanKind::Probes ? " (probes)" : " (pymalloc)"));
            const FilePlan want = in_process(path, kind);
            const PlacementResult got = w.plan_file(path, path, kind);
            REQUIRE(got.error == "");
            CHECK_FALSE(got.worker_failed);
            // Byte for byte: every field of every site and segment.
            CHECK(encoded(got.plan) == encoded(want));
            // Every allocator library has sites; the executable python3.11
            // has its pymalloc sites (its library, on Debian, none).
            if (kind == PlanKind::Probes && !is_python(path)) CHECK(!want.sites.empty());
            probed += kind == PlanKind::Probes && !want.sites.empty();
            pymalloc += kind == PlanKind::Pymalloc && !want.pymalloc.sites.empty();
        }
    }
    CHECK(probed >= 3);
    if (access(kPython, R_OK) == 0) CHECK(pymalloc >= 1);
    CHECK(w.pid() > 0);  // one worker did it all
}

TEST_CASE("memtop-cfi's placement errors are the parser's", "[privsep][placement]") {
    CfiWorker w;
    const PlacementResult p = w.plan_file("/etc/hostname", "/etc/hostname", PlanKind::Probes);
    std::string want;
    try {
        ElfImage::open("/etc/hostname");
    } catch (const MemtopError& e) {
        want = e.what();
    }
    CHECK(want == "read /etc/hostname: not an ELF file");
    CHECK(p.error == want);
    CHECK_FALSE(p.worker_failed);
    const PlacementResult dir = w.plan_file("/etc", "/etc", PlanKind::Probes);
    CHECK(dir.error == "read /etc: not a regular file");
    CHECK_FALSE(dir.worker_failed);
}

TEST_CASE("a placement reply that is garbled or places a probe outside the file's code is rejected",
          "[privsep][placement]") {
    const FilePlan good = in_process(kLibc, PlanKind::Probes);
    const uint64_t size = file_size(kLibc);
    REQUIRE(!good.sites.empty());
    CHECK(verdict(good, size) == "");
    // The first site memtop probes.
    size_t probed = 0;
    while (probed < good.sites.size() &&
           (!good.sites[probed].forwards_to.empty() || !good.sites[probed].not_traced.empty()))
        probed++;
    REQUIRE(probed < good.sites.size());
    const std::string at = "site " + std::to_string(probed) + ": ";

    CHECK(verdict(good, size, "x") == "the reply is garbled");
    {
        const std::string bytes = encoded(good);
        wire::Reader r(std::string_view(bytes).substr(0, bytes.size() - 3));
        r.type();
        FilePlan out;
        CHECK(decode_plan(r, PlanKind::Probes, size, out) == "the reply is garbled");
    }
    FilePlan p = good;
    p.sites[probed].file_offset += 1;  // not where its function's address says
    CHECK(verdict(p, size) == at + "an offset outside the file's code");
    p = good;
    // In the file but in a segment that is not code (the data segment).
    for (const auto& s : p.segments)
        if (!s.exec && s.filesz > 0) {
            p.sites[probed].func_vaddr = s.vaddr;
            p.sites[probed].insn_offset = 0;
            p.sites[probed].file_offset = s.offset;
        }
    CHECK(verdict(p, size) == at + "an offset outside the file's code");
    p = good;
    p.sites[probed].symbol = "system";
    CHECK(verdict(p, size) == at + "not an allocator function memtop knows");
    p = good;
    p.sites[probed].program = static_cast<ProbeProgram>(200);
    CHECK(verdict(p, size) == at + "garbled");
    p = good;
    p.sites[probed].instruction = "push rbp\x1b[2J";
    CHECK(verdict(p, size) == at + "text that is not printable");
    p = good;
    p.sites[probed].return_sites = {size + 10};
    CHECK(verdict(p, size) == at + "a return site outside the file's code");
    p = good;
    p.segments[0].filesz = size + 1;
    CHECK(verdict(p, size) == "segment 0 is outside the file");
    p = good;
    p.segments.resize(65);
    CHECK(verdict(p, size) == "65 segments");
    p = good;
    p.sites.resize(1025, good.sites[probed]);
    CHECK(verdict(p, size) == "1025 probe sites");

    if (access(kPython, R_OK) == 0) {
        const FilePlan py = in_process(kPython, PlanKind::Pymalloc);
        CHECK(verdict(py, file_size(kPython)) == "");
        FilePlan q = py;
        REQUIRE(!q.pymalloc.sites.empty());
        q.pymalloc.sites[0].reg = "rbx; rm";
        CHECK(verdict(q, file_size(kPython)) == "pymalloc site 0: garbled register");
        q = py;
        q.pymalloc.sites[0].op = static_cast<PymallocOp>(7);
        CHECK(verdict(q, file_size(kPython)) == "the reply is garbled");
    }
}

TEST_CASE("a library that crashes memtop-cfi's placement gets no plan, with the reason; the next one gets a new worker",
          "[privsep][placement]") {
    Seam crash("MEMTOP_TEST_PLACEMENT_CRASH_ON", "/libc.so.6");
    CfiWorker w;
    const PlacementResult before = w.plan_file(kLibstdcxx, kLibstdcxx, PlanKind::Probes);
    CHECK(before.error == "");
    const int first = w.pid();
    REQUIRE(first > 0);
    const PlacementResult crashed = w.plan_file(kLibc, kLibc, PlanKind::Probes);
    CHECK(crashed.error ==
          "not read: the placement worker (memtop-cfi) was killed by signal 11 (Segmentation fault) while reading it");
    CHECK(crashed.worker_failed);
    CHECK(crashed.plan.sites.empty());
    CHECK(w.pid() == 0);
    const PlacementResult after = w.plan_file(kLibstdcxx, kLibstdcxx, PlanKind::Probes);
    CHECK(after.error == "");
    CHECK(encoded(after.plan) == encoded(before.plan));
    CHECK(w.pid() != first);
    // The seam is placement's own: libc's unwind table is still built.
    UniqueFd fd(::open(kLibc, O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    CHECK(w.build(fd.get(), kLibc, 1u << 30).error == "");
}

TEST_CASE("a library that hangs memtop-cfi's placement: ended at the time limit, no plan, with the reason",
          "[privsep][placement]") {
    Seam hang("MEMTOP_TEST_PLACEMENT_HANG_ON", "/libc.so.6");
    CfiWorker w;
    CHECK(w.plan_file(kLibstdcxx, kLibstdcxx, PlanKind::Probes).error == "");
    const int first = w.pid();
    const PlacementResult hung = w.plan_file(kLibc, kLibc, PlanKind::Probes);
    CHECK(hung.error == "not read: the placement worker (memtop-cfi) did not answer within 4 s while reading it");
    CHECK(hung.worker_failed);
    CHECK(access(("/proc/" + std::to_string(first)).c_str(), F_OK) != 0);
    CHECK(w.plan_file(kLibstdcxx, kLibstdcxx, PlanKind::Probes).error == "");
}

TEST_CASE("a garbled placement reply is a worker failure: no plan, the worker ended, the next one new",
          "[privsep][placement]") {
    Seam garble("MEMTOP_TEST_PLACEMENT_GARBLE_ON", "/libc.so.6");
    CfiWorker w;
    CHECK(w.plan_file(kLibstdcxx, kLibstdcxx, PlanKind::Probes).error == "");
    const int first = w.pid();
    REQUIRE(first > 0);
    const PlacementResult bad = w.plan_file(kLibc, kLibc, PlanKind::Probes);
    CHECK(bad.error == "not read: the placement worker (memtop-cfi)'s reply was garbled (the reply is garbled)");
    CHECK(bad.worker_failed);
    CHECK(bad.plan.sites.empty());
    CHECK(w.pid() == 0);
    CHECK(access(("/proc/" + std::to_string(first)).c_str(), F_OK) != 0);
    CHECK(w.plan_file(kLibstdcxx, kLibstdcxx, PlanKind::Probes).error == "");
}
