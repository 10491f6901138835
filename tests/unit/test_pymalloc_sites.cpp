// Finding CPython's inlined object-allocator sites (attach/pymalloc_sites.h)
// in Debian 12's /usr/bin/python3.11 (the python3 package is in
// tools/deps.txt). The figures are that build's: PyObject_Malloc's check
// against pymalloc's own function is at 0x4fb36b, comparing with 0x4fb450.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "attach/pymalloc_sites.h"

using namespace memtop;

namespace {
constexpr const char* kPython = "/usr/bin/python3.11";
}

TEST_CASE("python3.11's inlined pymalloc sites are found, with the call's argument", "[pymalloc]") {
    if (access(kPython, R_OK) != 0) {
        WARN("no " << kPython << ": not checked");
        return;
    }
    auto image = ElfImage::open(kPython);
    PymallocPlan plan = plan_pymalloc(*image);
    // Debian 12's build; another build of 3.11 has other addresses.
    auto entry = image->function("PyObject_Malloc");
    REQUIRE(entry);
    if (entry->vaddr != 0x4fb350) {
        WARN("not Debian 12's python3.11 build: not checked");
        return;
    }
    CHECK(plan.impl[int(PymallocOp::Malloc)] == 0x4fb450);
    CHECK(plan.impl[int(PymallocOp::Free)] == 0x500fe0);
    // `mov 0x959d20(,%rax,8),%rdx` and `call 4fb540` in pymalloc's malloc.
    CHECK(plan.usedpools == 0x959d20);
    CHECK(plan.new_pool == 0x4fb540);
    size_t mallocs = plan.count(PymallocOp::Malloc), frees = plan.count(PymallocOp::Free);
    WARN("python3.11: " << mallocs << " malloc sites (" << plan.count(PymallocOp::Malloc, true) << " decoded), "
                        << frees << " free sites (" << plan.count(PymallocOp::Free, true) << " decoded), "
                        << plan.count(PymallocOp::Realloc) << " realloc, " << plan.count(PymallocOp::Calloc)
                        << " calloc");
    // Far more than the exported functions' callers (58 for PyObject_Malloc).
    CHECK(mallocs > 150);
    CHECK(frees > 40);
    // The exported PyObject_Malloc's own check: the size came in rdi and was
    // moved to rbx before the check; the fallback moves rbx to rsi.
    const PymallocSite* own = nullptr;
    for (const auto& s : plan.sites)
        if (s.jump_vaddr == 0x4fb371) own = &s;
    REQUIRE(own);
    CHECK(own->op == PymallocOp::Malloc);
    CHECK(own->reg == "rbx");
}

TEST_CASE("a file without CPython's allocator gives an empty plan", "[pymalloc]") {
    auto image = ElfImage::open("/proc/self/exe");
    PymallocPlan plan = plan_pymalloc(*image);
    CHECK(plan.sites.empty());
    CHECK(plan.impl[0] == 0);
}
