// Unwind tables built in the confined worker memtop-cfi (kernel/unwind/
// cfi_worker.h): the same tables as built in-process, the worker without
// privileges, the checks memtop makes of its replies, and what a file that
// crashes or hangs the worker costs (that file's table, nothing else).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "attach/elf_image.h"
#include "attach/program_files.h"
#include "kernel/unwind/cfi_table.h"
#include "kernel/unwind/cfi_worker.h"
#include "util/errors.h"
#include "util/unique_fd.h"

using namespace memtop;

namespace {

std::string status_field(int pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        size_t v = line.find_first_not_of(" \t", key.size() + 1);
        return v == std::string::npos ? std::string() : line.substr(v);
    }
    return "";
}

CfiBuild build_in_worker(CfiWorker& w, const std::string& path, size_t max_rows = 1u << 30) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    return w.build(fd.get(), path, max_rows);
}

bool same_rows(const std::vector<memtop_unwind_row>& a, const std::vector<memtop_unwind_row>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof a[0]) == 0);
}

// Every file this test program maps at start (libc, libstdc++, libdw,
// ld.so...), the unwind fixtures and the fuzzer's regression files.
std::vector<std::string> files_to_compare() {
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<std::string> files = program_files(self, ElfImage::open(self)->interpreter());
    for (const char* f : {UNWIND_FIXTURE_EH, UNWIND_FIXTURE_DEBUG, UNWIND_FIXTURE_NOCFI}) files.push_back(f);
    for (const auto& e : std::filesystem::directory_iterator(FUZZ_REGRESSIONS_DIR))
        if (e.path().filename().string().rfind("cfi_table", 0) == 0) files.push_back(e.path().string());
    return files;
}

// The worker's test seams from the environment (docs/testing.md), read when
// a CfiWorker is made.
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

TEST_CASE("memtop-cfi builds the same tables as the in-process builder, file by file", "[unwind][cfi][privsep]") {
    CfiWorker w;
    CHECK(w.pid() == 0);  // started when first needed
    const std::vector<std::string> files = files_to_compare();
    REQUIRE(files.size() >= 8);
    size_t tables = 0;
    for (const std::string& path : files) {
        INFO(path);
        std::string want_error;
        CfiTable want;
        try {
            want = build_cfi_table(path);
        } catch (const MemtopError& e) {
            want_error = e.what();
        }
        const CfiBuild got = build_in_worker(w, path);
        if (!want_error.empty()) {
            CHECK("unwind table for " + path + ": " + got.error == want_error);
            CHECK(got.rows.empty());
            continue;
        }
        CHECK(got.error.empty());
        CHECK(got.fdes == want.fdes);
        CHECK(got.unsupported == want.unsupported);
        CHECK(got.total_rows == want.rows.size());
        CHECK(same_rows(got.rows, want.rows));
        tables += !want.rows.empty();
    }
    CHECK(tables >= 6);
    // One worker did it all: none of these files crashed it.
    const int worker = w.pid();
    REQUIRE(worker > 0);
    CHECK(status_field(worker, "Name") == "memtop-cfi");
    CHECK(status_field(worker, "PPid") == std::to_string(getpid()));
    CHECK(status_field(worker, "CapEff") == "0000000000000000");
    CHECK(status_field(worker, "CapPrm") == "0000000000000000");
    CHECK(status_field(worker, "NoNewPrivs") == "1");
    CHECK(status_field(worker, "Seccomp") == "2");
    // It keeps no descriptor it was handed: /dev/null and its socket.
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(worker) + "/fd")) {
#ifdef MEMTOP_SANITIZER_BUILD
        if (e.path().filename() == "2") continue;  // the sanitizer build's worker keeps stderr (sandbox.cpp)
#endif
        const std::string target = std::filesystem::read_symlink(e.path()).string();
        INFO(target);
        CHECK((target == "/dev/null" || target.rfind("socket:", 0) == 0));
    }
}

TEST_CASE("memtop-cfi sends no rows that would not fit, and says how many there are", "[unwind][cfi][privsep]") {
    CfiWorker w;
    const CfiTable want = build_cfi_table(UNWIND_FIXTURE_EH);
    REQUIRE(want.rows.size() > 2);
    CfiBuild got = build_in_worker(w, UNWIND_FIXTURE_EH, want.rows.size() - 1);
    CHECK(got.error.empty());
    CHECK(got.total_rows == want.rows.size());
    CHECK(got.rows.empty());
    got = build_in_worker(w, UNWIND_FIXTURE_EH, want.rows.size());
    CHECK(same_rows(got.rows, want.rows));
}

TEST_CASE("check_cfi_rows refuses what the BPF unwinder cannot use as a table", "[unwind][cfi][privsep]") {
    auto row = [](uint32_t off, uint8_t type, uint32_t cfa = 0, int8_t rbp = 0) {
        memtop_unwind_row r{};
        r.off = off;
        memtop_row_set(&r, type, cfa);
        r.rbp = rbp;
        return r;
    };
    const std::vector<memtop_unwind_row> good = {
        row(0x10, MEMTOP_ROW_CFA_RSP, 1),     row(0x11, MEMTOP_ROW_CFA_RSP, 2),
        row(0x14, MEMTOP_ROW_CFA_RBP, 2, -2), row(0x30, MEMTOP_ROW_CFA_RSP, MEMTOP_ROW_CFA_MAX, -128),
        row(0x40, MEMTOP_ROW_NONE),           row(0x50, MEMTOP_ROW_PLT),
        row(0x60, MEMTOP_ROW_OUTERMOST),      row(0x70, MEMTOP_ROW_UNSUPPORTED)};
    CHECK(check_cfi_rows(good) == "");
    CHECK(check_cfi_rows({}) == "");
    auto with = [&](size_t i, memtop_unwind_row r) {
        std::vector<memtop_unwind_row> v = good;
        v[i] = r;
        return check_cfi_rows(v);
    };
    CHECK(with(2, row(0x11, MEMTOP_ROW_CFA_RBP, 2, -2)) == "row 2: offsets out of order");
    CHECK(with(2, row(0x10, MEMTOP_ROW_CFA_RBP, 2, -2)) == "row 2: offsets out of order");
    memtop_unwind_row bad_type = row(0x20, MEMTOP_ROW_NONE);
    bad_type.type = 6;
    CHECK(with(3, bad_type) == "row 3: type 6 unknown");
    bad_type.type = 7 | (1 << 3);
    CHECK(with(3, bad_type) == "row 3: type 7 unknown");
    memtop_unwind_row cfa_on_none = row(0x48, MEMTOP_ROW_NONE);
    cfa_on_none.type = MEMTOP_ROW_NONE | (1 << 3);
    CHECK(with(4, cfa_on_none) == "row 4: a CFA offset on a row without a CFA");
    CHECK(with(1, row(0x11, MEMTOP_ROW_CFA_RSP, 2, 1)) == "row 1: rbp saved above the CFA");
}

TEST_CASE("a file that crashes memtop-cfi gets no table, with the reason; the next file gets a new worker",
          "[unwind][cfi][privsep]") {
    Seam crash("MEMTOP_TEST_CFI_WORKER_CRASH_ON", "/libunwind_fixture_eh.so");
    CfiWorker w;
    const CfiBuild before = build_in_worker(w, UNWIND_FIXTURE_DEBUG);
    CHECK(before.error.empty());
    const int first = w.pid();
    REQUIRE(first > 0);
    const CfiBuild crashed = build_in_worker(w, UNWIND_FIXTURE_EH);
    CHECK(crashed.error ==
          "not read: the unwind-table worker was killed by signal 11 (Segmentation fault) while reading it");
    CHECK(crashed.rows.empty());
    CHECK(w.pid() == 0);
    const CfiBuild after = build_in_worker(w, UNWIND_FIXTURE_DEBUG);
    CHECK(after.error.empty());
    CHECK(same_rows(after.rows, before.rows));
    CHECK(w.pid() > 0);
    CHECK(w.pid() != first);
}

TEST_CASE("a file that hangs memtop-cfi: ended at the time limit, the file gets no table, with the reason",
          "[unwind][cfi][privsep]") {
    Seam hang("MEMTOP_TEST_CFI_WORKER_HANG_ON", "/libunwind_fixture_eh.so");
    CfiWorker w;
    CHECK(build_in_worker(w, UNWIND_FIXTURE_DEBUG).error.empty());
    const int first = w.pid();
    const CfiBuild hung = build_in_worker(w, UNWIND_FIXTURE_EH);
    CHECK(hung.error == "not read: the unwind-table worker did not answer within 4 s while reading it");
    CHECK(hung.rows.empty());
    // Ended and reaped: no process is left behind.
    CHECK(access(("/proc/" + std::to_string(first)).c_str(), F_OK) != 0);
    const CfiBuild after = build_in_worker(w, UNWIND_FIXTURE_DEBUG);
    CHECK(after.error.empty());
    CHECK(after.total_rows > 0);
}
