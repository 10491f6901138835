// Probe placement against the real libraries of this Debian 12 host.
#include <catch2/catch.hpp>

#include <map>

#include "attach/elf_image.h"
#include "attach/placement.h"
#include "util/errors.h"

using namespace memtop;

namespace {
std::map<std::string, ProbeSite> plan(const char* path) {
    std::map<std::string, ProbeSite> m;
    for (auto& s : plan_probes(*ElfImage::open(path))) m[s.symbol] = s;
    return m;
}
const char* kLibc = "/lib/x86_64-linux-gnu/libc.so.6";
const char* kLibstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
}  // namespace

TEST_CASE("glibc's hot allocator entries get probes the kernel emulates", "[placement]") {
    auto p = plan(kLibc);
    for (const char* f : {"malloc", "calloc", "realloc", "free"}) {
        INFO(f);
        REQUIRE(p.count(f));
        CHECK(p[f].forwards_to.empty());
        CHECK(p[f].emulated);
    }
    CHECK(p["malloc"].has_return);
    CHECK_FALSE(p["free"].has_return);
}

TEST_CASE("free's probe moves past its NULL test onto push", "[placement]") {
    auto p = plan(kLibc);
    // glibc 2.36: test %rdi,%rdi ; je ... ; push %rbp
    CHECK(p["free"].insn_offset > 0);
    CHECK(p["free"].instruction.rfind("push", 0) == 0);
}

TEST_CASE("aliases share one probe", "[placement]") {
    auto p = plan(kLibc);
    // aligned_alloc and memalign are one function in glibc.
    CHECK(p.count("aligned_alloc") + p.count("memalign") == 1);
}

TEST_CASE("libstdc++ operator delete and new[] forward, operator new is probed", "[placement]") {
    auto p = plan(kLibstdcxx);
    REQUIRE(p.count("_Znwm"));
    CHECK(p["_Znwm"].forwards_to.empty());
    CHECK(p["_Znwm"].emulated);
    // A return probe would break unwinding when new throws.
    CHECK_FALSE(p["_Znwm"].has_return);
    CHECK(p["_ZdlPv"].forwards_to == "free");
    CHECK(p["_Znam"].forwards_to == "_Znwm");
    CHECK(p["_ZdlPvm"].forwards_to == "_ZdlPv");
    // Nothing from the table is left out: every variant is planned.
    for (const char* f : {"_ZnwmSt11align_val_t", "_ZnwmRKSt9nothrow_t", "_ZdaPvmSt11align_val_t"}) {
        INFO(f);
        CHECK(p.count(f));
    }
}

TEST_CASE("a probe never skips an instruction that writes an argument or rsp", "[placement]") {
    auto p = plan(kLibc);
    // reallocarray multiplies its arguments first (mul writes rdx): it can
    // only be probed at its first instruction.
    REQUIRE(p.count("reallocarray"));
    CHECK(p["reallocarray"].insn_offset == 0);
}

TEST_CASE("opening a file that is not ELF names the file", "[placement]") {
    try {
        ElfImage::open("/etc/hostname");
        FAIL("expected an error");
    } catch (const MemtopError& e) {
        CHECK(std::string(e.what()).find("/etc/hostname") != std::string::npos);
        CHECK(e.exit_code() == kExitAttach);
    }
}

namespace {
const char* kJemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
const char* kTcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";
const char* kMimalloc = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";
}  // namespace

TEST_CASE("libstdc++'s operator new takes its block from malloc; no return site is needed", "[placement]") {
    auto p = plan(kLibstdcxx);
    // Its body calls malloc / aligned_alloc: the block is adopted from that call.
    CHECK(p["_Znwm"].program == ProbeProgram::NewEntry);
    CHECK(p["_ZnwmSt11align_val_t"].program == ProbeProgram::NewEntry);
    CHECK(p["_Znwm"].return_sites.empty());
    // The exception that ends a throwing new in flight.
    REQUIRE(p.count("__cxa_allocate_exception"));
    CHECK(p["__cxa_allocate_exception"].program == ProbeProgram::ExceptionEntry);
}

TEST_CASE("jemalloc, tcmalloc and mimalloc: operator new is probed at its returns", "[placement]") {
    for (const char* lib : {kJemalloc, kTcmalloc, kMimalloc}) {
        INFO(lib);
        auto p = plan(lib);
        REQUIRE(p.count("_Znwm"));
        const ProbeSite& s = p["_Znwm"];
        CHECK(s.not_traced.empty());
        CHECK(s.program == ProbeProgram::NewOwnEntry);
        REQUIRE_FALSE(s.return_sites.empty());
        // Every return site is a ret instruction in the file (c3, or f3 c3).
        for (uint64_t off : s.return_sites) {
            uint8_t b[2] = {0, 0};
            FILE* f = fopen(lib, "rb");
            REQUIRE(f);
            fseek(f, static_cast<long>(off), SEEK_SET);
            REQUIRE(fread(b, 1, 2, f) == 2);
            fclose(f);
            CHECK((b[0] == 0xc3 || (b[0] == 0xf3 && b[1] == 0xc3)));
        }
        // Their malloc family is probed as glibc's is.
        for (const char* f : {"malloc", "free", "calloc", "realloc"}) {
            INFO(f);
            CHECK(p.count(f));
        }
    }
    // jemalloc's own API.
    auto j = plan(kJemalloc);
    CHECK(j["mallocx"].program == ProbeProgram::MallocEntry);
    CHECK(j["sdallocx"].program == ProbeProgram::FreeEntry);
    // Its fast path returns its own block; only a slow path elsewhere calls
    // an allocator: taking the block from that call would take the next malloc.
    CHECK(j["_Znwm"].return_sites.size() >= 2);
}

TEST_CASE("tcmalloc's and mimalloc's own API: aliases probed once, the rest by their own names", "[placement]") {
    // Debian's tcmalloc: tc_malloc is malloc, tc_new is operator new; the
    // probe is planned once, under the standard name.
    auto t = plan(kTcmalloc);
    CHECK(t.count("malloc"));
    CHECK_FALSE(t.count("tc_malloc"));
    CHECK_FALSE(t.count("tc_new"));
    REQUIRE(t.count("tc_malloc_skip_new_handler"));  // a function of its own
    CHECK(t["tc_malloc_skip_new_handler"].program == ProbeProgram::MallocEntry);
    CHECK(t["tc_malloc_skip_new_handler"].has_return);

    auto m = plan(kMimalloc);
    CHECK(m.count("malloc"));
    CHECK_FALSE(m.count("mi_malloc"));  // malloc's alias
    for (const char* f : {"mi_zalloc", "mi_malloc_aligned", "mi_malloc_small"}) {
        INFO(f);
        REQUIRE(m.count(f));
        CHECK(m[f].program == ProbeProgram::MallocEntry);
    }
    CHECK(m["mi_mallocn"].program == ProbeProgram::CallocEntry);
    CHECK(m["mi_calloc_aligned"].program == ProbeProgram::CallocEntry);
    CHECK(m["mi_rezalloc"].program == ProbeProgram::ReallocEntry);
    CHECK(m["mi_recalloc"].program == ProbeProgram::ReallocarrayEntry);
    CHECK(m["mi_free_size"].program == ProbeProgram::FreeEntry);
    // mi_new_n(count, size) allocates itself: its block is taken at its returns.
    REQUIRE(m.count("mi_new_n"));
    CHECK(m["mi_new_n"].program == ProbeProgram::NewNOwnEntry);
    CHECK(m["mi_new_n"].not_traced.empty());
    CHECK_FALSE(m["mi_new_n"].return_sites.empty());
    // Nothing that would count a call twice: mi_new_realloc is left to the
    // mi_realloc it calls.
    CHECK_FALSE(m.count("mi_new_realloc"));
}

TEST_CASE("mimalloc's heap API, strings and resizes in place: each name once, by its argument layout", "[placement]") {
    auto m = plan(kMimalloc);
    // In Debian's libmimalloc2.0 every mi_heap_* name is a function of its own.
    for (const char* f : {"mi_heap_malloc", "mi_heap_zalloc", "mi_heap_malloc_small", "mi_heap_malloc_aligned"}) {
        INFO(f);
        REQUIRE(m.count(f));
        CHECK(m[f].program == ProbeProgram::MiHeapMallocEntry);
        CHECK(m[f].has_return);
    }
    CHECK(m["mi_heap_calloc"].program == ProbeProgram::MiHeapCallocEntry);
    CHECK(m["mi_heap_mallocn"].program == ProbeProgram::MiHeapCallocEntry);
    CHECK(m["mi_heap_realloc"].program == ProbeProgram::MiHeapReallocEntry);
    CHECK(m["mi_heap_reallocf"].program == ProbeProgram::MiHeapReallocfEntry);
    CHECK(m["mi_heap_reallocn"].program == ProbeProgram::MiHeapReallocnEntry);
    CHECK(m["mi_heap_strdup"].program == ProbeProgram::MiHeapStrdupEntry);
    CHECK(m["mi_heap_realpath"].program == ProbeProgram::MiHeapRealpathEntry);
    CHECK(m["mi_heap_new"].program == ProbeProgram::MiHeapNewEntry);
    CHECK(m["mi_heap_destroy"].program == ProbeProgram::MiHeapDestroyEntry);
    CHECK_FALSE(m["mi_heap_destroy"].has_return);
    CHECK(m["mi_heap_delete"].program == ProbeProgram::MiHeapDeleteEntry);
    CHECK(m["mi_heap_set_default"].program == ProbeProgram::MiHeapSetDefaultEntry);
    CHECK(m["mi_reallocf"].program == ProbeProgram::ReallocfEntry);
    CHECK(m["mi_strdup"].program == ProbeProgram::StrdupEntry);
    CHECK(m["mi_strndup"].program == ProbeProgram::StrdupEntry);
    CHECK(m["mi_realpath"].program == ProbeProgram::RealpathEntry);
    CHECK(m["mi_expand"].program == ProbeProgram::ExpandEntry);
    auto j = plan(kJemalloc);
    REQUIRE(j.count("xallocx"));
    CHECK(j["xallocx"].program == ProbeProgram::XallocxEntry);
    CHECK(j["xallocx"].has_return);
}

TEST_CASE("a function's code range comes from its FDE, also without a symbol", "[placement]") {
    auto img = ElfImage::open(kLibstdcxx);
    auto fn = img->function("_Znwm");
    REQUIRE(fn);
    auto r = img->code_range(fn->vaddr + 4);
    REQUIRE(r);
    CHECK(r->first == fn->vaddr);
    CHECK(r->second == fn->vaddr + fn->size);
}
