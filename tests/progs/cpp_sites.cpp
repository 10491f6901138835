// cpp_sites: operator new call sites with known sizes.  Expected numbers:
// expect.h (CPP_*).  Site functions are extern "C" (unmangled names);
// "@line NAME" marks the allocation that stays outstanding for site NAME.
//
// Usage: cpp_sites [--wait | --baseline] [--no-throw]
//   --no-throw: leave out new_fail_site, for allocators whose failing
//   operator new aborts instead of throwing (Debian's mimalloc 2.0).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "common.h"
#include "expect.h"

namespace {
struct Obj {
    char b[CPP_OBJ_SIZE];
};
struct alignas(CPP_ALIGNED_ALIGN) AlignedObj {
    char b[CPP_ALIGNED_SIZE];
};
static_assert(sizeof(Obj) == CPP_OBJ_SIZE);
static_assert(sizeof(AlignedObj) == CPP_ALIGNED_SIZE);
static_assert(sizeof(int) * CPP_VEC_CAP == CPP_VEC_BYTES);

// The vector object lives in static storage that is never destroyed, so its
// buffer is still outstanding when the process exits.
alignas(std::vector<int>) unsigned char g_vec_storage[sizeof(std::vector<int>)];
}  // namespace

extern "C" {
void* g_keep[32];
int g_nkeep;
std::vector<int>* g_vec;
volatile std::size_t g_huge = SIZE_MAX / 4;

static void keep(void* p) {
    TP_CHECK(p != nullptr);
    TP_CHECK(g_nkeep < int(sizeof g_keep / sizeof g_keep[0]));
    g_keep[g_nkeep++] = p;
    escape(p);
}

SITE void new_site(void) {
    for (int i = 0; i < CPP_NEW_N; i++) {
        Obj* o = new Obj;  // @line new_site
        keep(o);
        std::memset(o->b, 'n', sizeof o->b);
    }
}

SITE void new_fail_site(void) {
    bool caught = false;
    try {
        char* p = new char[g_huge];
        escape(p);
        keep(p);  // not reached
    } catch (const std::bad_alloc&) {
        caught = true;
    }
    TP_CHECK(caught);
}

SITE void new_array_site(void) {
    char* p = new char[CPP_NEW_ARRAY_SIZE];  // @line new_array_site
    keep(p);
    std::memset(p, 'a', CPP_NEW_ARRAY_SIZE);
}

SITE void nothrow_new_site(void) {
    char* p = new (std::nothrow) char[CPP_NOTHROW_SIZE];  // @line nothrow_new_site
    keep(p);
}

SITE void aligned_new_site(void) {
    AlignedObj* o = new AlignedObj;  // @line aligned_new_site
    TP_CHECK(reinterpret_cast<std::uintptr_t>(o) % CPP_ALIGNED_ALIGN == 0);
    keep(o);
}

SITE void delete_site(void) {
    Obj* o = new Obj;
    escape(o);
    delete o;
}

SITE void vector_site(void) {
    g_vec = new (g_vec_storage) std::vector<int>();  // placement new: no allocation
    g_vec->reserve(CPP_VEC_CAP);                     // @line vector_site
    TP_CHECK(g_vec->capacity() == CPP_VEC_CAP);
    escape(g_vec->data());
}

SITE void peak_site(void) {
    char* p = new char[CPP_PEAK_BLOCK];
    std::memset(p, 'p', CPP_PEAK_BLOCK);
    escape(p);
    delete[] p;
}

int g_no_throw;

SITE void run_sites(void) {
    new_site();
    if (!g_no_throw) new_fail_site();
    new_array_site();
    nothrow_new_site();
    aligned_new_site();
    delete_site();
    vector_site();
    peak_site();
    TP_CHECK(g_nkeep == CPP_TOTAL_ALLOCS - 1);  // + the vector buffer
}
}  // extern "C"

int main(int argc, char** argv) {
    if (tp_has_arg(argc, argv, "--baseline")) return 0;
    int wait = tp_has_arg(argc, argv, "--wait");
    g_no_throw = tp_has_arg(argc, argv, "--no-throw");
    if (wait) {
        tp_ready();
        if (!tp_read_line()) return 1;
    }
    run_sites();
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    return 0;
}
