// What memtop asks of every file before it places anything, answered by the
// confined worker memtop-cfi (request 'S', kernel/unwind/cfi_worker.h,
// FileSymbols in attach/file_plan.h): which files define an allocator, how
// a program is linked and by which loader, CPython's symbols. The worker's
// answers equal the in-process ones and what ElfImage says of the same
// files (what memtop parsed as root before), memtop rejects a garbled or
// hostile answer, and a file that crashes or hangs the worker costs that
// file only.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "attach/elf_image.h"
#include "attach/file_plan.h"
#include "attach/program_files.h"
#include "attach/targets.h"
#include "kernel/unwind/cfi_worker.h"
#include "util/errors.h"

using namespace memtop;

namespace {

constexpr const char* kLibc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
constexpr const char* kLibstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
constexpr const char* kPython = "/usr/bin/python3.11";

// Every file this test program loads (libc, libstdc++, libdw, ld.so, the
// program itself...), the allocator libraries installed here, CPython, a
// shell, and a static-pie stripped program (ldconfig).
std::vector<std::string> files_to_compare() {
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<std::string> out = program_files(self, ElfImage::open(self)->interpreter());
    for (const char* name : {"libjemalloc.so.2", "libtcmalloc.so.4", "libtcmalloc_minimal.so.4", "libmimalloc.so.2",
                             "libpython3.11.so.1.0", "libm.so.6"}) {
        const std::string path = std::string("/usr/lib/x86_64-linux-gnu/") + name;
        if (access(path.c_str(), R_OK) == 0) out.push_back(path);
    }
    for (const char* path : {kPython, "/bin/sh", "/sbin/ldconfig"})
        if (access(path, R_OK) == 0) out.push_back(path);
    return out;
}

std::string encoded(const FileSymbols& s) {
    wire::Writer w('x');
    encode_file_symbols(w, s);
    return w.bytes();
}

// decode_file_symbols's verdict on `s` (and `tail` after it) as an answer
// for a file of `size` bytes.
std::string verdict(const FileSymbols& s, uint64_t size, const std::string& tail = "") {
    const std::string bytes = encoded(s) + tail;
    wire::Reader r(bytes);
    r.type();
    FileSymbols out;
    return decode_file_symbols(r, size, out);
}

uint64_t file_size(const std::string& path) {
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    return static_cast<uint64_t>(st.st_size);
}

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

const std::string kCrashed =
    "not read: the placement worker (memtop-cfi) was killed by signal 11 (Segmentation fault) while reading it";

}  // namespace

TEST_CASE("memtop-cfi reads the same symbols as in-process, and as ElfImage, for every file here",
          "[privsep][symbols]") {
    CfiWorker w;
    const std::vector<std::string> files = files_to_compare();
    INFO(files.size() << " files");
    REQUIRE(files.size() >= 6);
    std::vector<std::string> allocator_names;
    for (const auto& a : allocator_symbols()) allocator_names.push_back(a.name);
    size_t allocators = 0, dynamic = 0, pythons = 0;
    for (const std::string& path : files) {
        INFO(path);
        const FileSymbols want = read_file_symbols(path);
        const SymbolsResult got = w.symbols_file(path, path);
        REQUIRE(got.error == "");
        CHECK_FALSE(got.worker_failed);
        CHECK(encoded(got.symbols) == encoded(want));  // byte for byte

        // What memtop read as root before, through ElfImage: which files
        // define an allocator (AllocatorFinder), PT_INTERP and symbols at
        // all (the -- CMD checks), PyMem_SetAllocator.
        const auto asked = ElfImage::open(path, allocator_names);
        bool defines = false;
        for (const auto& n : allocator_names) defines = defines || asked->function(n).has_value();
        CHECK(got.symbols.defines_allocator() == defines);
        const auto all = ElfImage::open(path);
        CHECK(got.symbols.dynamic == all->dynamic());
        CHECK(got.symbols.interpreter == all->interpreter());
        CHECK(got.symbols.has_functions == all->has_functions());
        CHECK(got.symbols.function("PyMem_SetAllocator").has_value() ==
              all->function("PyMem_SetAllocator").has_value());
        if (auto f = all->function("malloc")) CHECK(got.symbols.function("malloc") == f->vaddr);
        allocators += defines;
        dynamic += got.symbols.dynamic;
        pythons += got.symbols.symbol("_PyRuntime").has_value();
    }
    CHECK(allocators >= 2);  // libc, libstdc++
    CHECK(dynamic >= 2);
    if (access(kPython, R_OK) == 0) {
        CHECK(pythons >= 1);
        // _PyRuntime is an object: a symbol, not a function, in the data
        // segment's file bytes.
        const SymbolsResult py = w.symbols_file(kPython, kPython);
        REQUIRE(py.symbols.symbol("_PyRuntime").has_value());
        CHECK_FALSE(py.symbols.function("_PyRuntime").has_value());
        CHECK(py.symbols.file_offset(*py.symbols.symbol("_PyRuntime")).has_value());
        CHECK(py.symbols.function("PyMem_SetAllocator").has_value());
        CHECK(py.symbols.interpreter == "/lib64/ld-linux-x86-64.so.2");
    }
    if (access("/sbin/ldconfig", R_OK) == 0) {
        // Debian's is static-pie and stripped: what the -- CMD check calls
        // "statically linked and stripped".
        const SymbolsResult s = w.symbols_file("/sbin/ldconfig", "/sbin/ldconfig");
        CHECK_FALSE(s.symbols.dynamic);
        CHECK_FALSE(s.symbols.has_functions);
        CHECK_FALSE(s.symbols.defines_allocator());
    }
    CHECK(w.pid() > 0);  // one worker did it all
}

TEST_CASE("memtop-cfi's symbols errors are the parser's", "[privsep][symbols]") {
    CfiWorker w;
    const SymbolsResult s = w.symbols_file("/etc/hostname", "/etc/hostname");
    CHECK(s.error == "read /etc/hostname: not an ELF file");
    CHECK_FALSE(s.worker_failed);
    const SymbolsResult dir = w.symbols_file("/etc", "/etc");
    CHECK(dir.error == "read /etc: not a regular file");
    CHECK_FALSE(dir.worker_failed);
    const SymbolsResult gone = w.symbols_file("/nonexistent/memtop", "/nonexistent/memtop");
    CHECK(gone.error == "open /nonexistent/memtop: No such file or directory");
    CHECK_FALSE(gone.worker_failed);
}

TEST_CASE("a symbols answer that is garbled, or names a loader memtop would not run, is rejected",
          "[privsep][symbols]") {
    const FileSymbols good = read_file_symbols(kLibc);
    const uint64_t size = file_size(kLibc);
    REQUIRE(good.defines_allocator());
    REQUIRE(good.defined.size() >= 2);
    CHECK(verdict(good, size) == "");

    CHECK(verdict(good, size, "x") == "the reply is garbled");
    {
        const std::string bytes = encoded(good);
        wire::Reader r(std::string_view(bytes).substr(0, bytes.size() - 3));
        r.type();
        FileSymbols out;
        CHECK(decode_file_symbols(r, size, out) == "the reply is garbled");
    }
    FileSymbols s = good;
    s.dynamic = true;
    s.interpreter = "ld.so";  // relative: run from memtop's directory
    CHECK(verdict(s, size) == "an interpreter memtop would not run");
    s.interpreter = "/lib64/ld\x1b[2J.so";
    CHECK(verdict(s, size) == "an interpreter memtop would not run");
    s.interpreter = "/" + std::string(4096, 'a');
    CHECK(verdict(s, size) == "an interpreter memtop would not run");
    s.interpreter = "/lib64/ld-linux-x86-64.so.2";
    CHECK(verdict(s, size) == "");
    s.dynamic = false;  // a static file has no loader
    CHECK(verdict(s, size) == "an interpreter memtop would not run");
    s = good;
    s.defined[1].index = s.defined[0].index;  // twice the same name
    CHECK(verdict(s, size) == "symbol 1: not one of the names asked");
    s = good;
    s.defined.back().index = static_cast<uint16_t>(symbol_questions().size());
    CHECK(verdict(s, size) == "symbol " + std::to_string(s.defined.size() - 1) + ": not one of the names asked");
    s = good;
    s.defined.resize(symbol_questions().size() + 1, good.defined[0]);
    CHECK(verdict(s, size) ==
          std::to_string(s.defined.size()) + " symbols for " + std::to_string(symbol_questions().size()) + " names");
    s = good;
    s.segments[0].filesz = size + 1;
    CHECK(verdict(s, size) == "segment 0 is outside the file");
    {
        // A flag that is neither 0 nor 1.
        std::string bytes = encoded(good);
        bytes[1] = 2;  // dynamic
        wire::Reader r(bytes);
        r.type();
        FileSymbols out;
        CHECK(decode_file_symbols(r, size, out) == "the reply is garbled");
    }
}

TEST_CASE("a file that crashes memtop-cfi's symbols request gets no answer, with the reason; the next a new worker",
          "[privsep][symbols]") {
    Seam crash("MEMTOP_TEST_SYMBOLS_CRASH_ON", "/libc.so.6");
    CfiWorker w;
    const SymbolsResult before = w.symbols_file(kLibstdcxx, kLibstdcxx);
    CHECK(before.error == "");
    const int first = w.pid();
    REQUIRE(first > 0);
    const SymbolsResult crashed = w.symbols_file(kLibc, kLibc);
    CHECK(crashed.error == kCrashed);
    CHECK(crashed.worker_failed);
    CHECK(crashed.symbols.defined.empty());
    CHECK(w.pid() == 0);
    const SymbolsResult after = w.symbols_file(kLibstdcxx, kLibstdcxx);
    CHECK(after.error == "");
    CHECK(encoded(after.symbols) == encoded(before.symbols));
    CHECK(w.pid() != first);
    // The seam is the symbols request's own: libc's probes are still planned.
    CHECK(w.plan_file(kLibc, kLibc, PlanKind::Probes).error == "");
}

TEST_CASE("a file that hangs memtop-cfi's symbols request: ended at the time limit, no answer, with the reason",
          "[privsep][symbols]") {
    Seam hang("MEMTOP_TEST_SYMBOLS_HANG_ON", "/libc.so.6");
    CfiWorker w;
    CHECK(w.symbols_file(kLibstdcxx, kLibstdcxx).error == "");
    const int first = w.pid();
    const SymbolsResult hung = w.symbols_file(kLibc, kLibc);
    CHECK(hung.error == "not read: the placement worker (memtop-cfi) did not answer within 4 s while reading it");
    CHECK(hung.worker_failed);
    CHECK(access(("/proc/" + std::to_string(first)).c_str(), F_OK) != 0);
    CHECK(w.symbols_file(kLibstdcxx, kLibstdcxx).error == "");
}

TEST_CASE("a garbled symbols answer from the worker is a worker failure: the worker ended, the next one new",
          "[privsep][symbols]") {
    Seam garble("MEMTOP_TEST_SYMBOLS_GARBLE_ON", "/libc.so.6");
    CfiWorker w;
    CHECK(w.symbols_file(kLibstdcxx, kLibstdcxx).error == "");
    const int first = w.pid();
    REQUIRE(first > 0);
    const SymbolsResult bad = w.symbols_file(kLibc, kLibc);
    CHECK(bad.error == "not read: the placement worker (memtop-cfi)'s reply was garbled (the reply is garbled)");
    CHECK(bad.worker_failed);
    CHECK(bad.symbols.defined.empty());
    CHECK(access(("/proc/" + std::to_string(first)).c_str(), F_OK) != 0);
    CHECK(w.symbols_file(kLibstdcxx, kLibstdcxx).error == "");
}

TEST_CASE("a file the worker failed on is counted as unread, asked about once, and not probed; the others are",
          "[privsep][symbols][targets]") {
    // The reader memtop gives the finder (Tracer::file_symbols), with the
    // worker failing on libc.
    std::map<std::string, int> asked;
    auto in_process = in_process_symbols();
    AllocatorFinder finder([&](const std::string& open_path, const std::string& shown, bool* failed) {
        asked[shown]++;
        if (shown.size() > 10 && shown.compare(shown.size() - 10, 10, "/libc.so.6") == 0) {
            *failed = true;
            return static_cast<const FileSymbols*>(nullptr);
        }
        return in_process(open_path, shown, failed);
    });
    auto maps = read_proc_maps(getpid(), nullptr);
    REQUIRE(maps);
    for (int round = 0; round < 2; round++) {
        size_t unread = 9;
        const auto files = finder.files_of(getpid(), *maps, &unread);
        CHECK(unread == 1);
        bool libc = false, libstdcxx = false;
        for (const auto& f : files) {
            libc = libc || f.path.find("/libc.so.6") != std::string::npos;
            libstdcxx = libstdcxx || f.path.find("/libstdc++.so.6") != std::string::npos;
        }
        CHECK_FALSE(libc);
        CHECK(libstdcxx);
    }
    for (const auto& [path, n] : asked) {
        INFO(path);
        CHECK(n == 1);  // each file once, the failed one too
    }
}

TEST_CASE("a PT_INTERP memtop would not run (relative, escape codes) is no loader: only the program is known",
          "[privsep][symbols]") {
    // Copies of /bin/sh whose PT_INTERP string is patched in place, as a
    // hostile program could ship it: memtop runs the loader as root
    // (`ld.so --list`), so the worker's answer names none.
    std::ifstream in("/bin/sh", std::ios::binary);
    const std::string image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string loader = "/lib64/ld-linux-x86-64.so.2";
    const size_t at = image.find(loader + '\0');
    REQUIRE(at != std::string::npos);
    CfiWorker w;
    for (const std::string& hostile :
         {std::string("lib64/ld-linux-x86-64.so.2X"), std::string("/lib64/\x1b[2Jx86-64.so.2XXXXX")}) {
        REQUIRE(hostile.size() == loader.size());
        std::string patched = image;
        patched.replace(at, loader.size(), hostile);
        char path[] = "/tmp/memtop-interp-XXXXXX";
        const int fd = mkstemp(path);
        REQUIRE(fd >= 0);
        REQUIRE(write(fd, patched.data(), patched.size()) == static_cast<ssize_t>(patched.size()));
        close(fd);
        INFO(hostile);
        CHECK(ElfImage::open(path)->interpreter() == hostile);  // what the file says
        const SymbolsResult got = w.symbols_file(path, path);
        CHECK(got.error == "");
        CHECK(got.symbols.dynamic);
        CHECK(got.symbols.interpreter == "");
        CHECK(encoded(got.symbols) == encoded(read_file_symbols(path)));
        CHECK(program_files(path, got.symbols.interpreter) == std::vector<std::string>{path});
        unlink(path);
    }
}
