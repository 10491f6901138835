// api_sites: an allocator's own API called by name, one named function per
// call site (api_sites.h has what memtop must report for each). Built once
// per allocator: API_JEMALLOC (-ljemalloc), API_TCMALLOC
// (-ltcmalloc_minimal), API_MIMALLOC (-lmimalloc). Site functions are
// extern "C", so frames[0].function is their plain name.
//
// Usage: api_sites_X [--wait | --baseline] [MODE]
// MODE (api_sites.h has a table for each): none, the allocator's main API;
// mimalloc: --heap (the heap API, mi_heap_destroy), --strings (mi_strdup,
// mi_strndup, mi_realpath), --expand (mi_expand), --reallocf-fail;
// jemalloc: --expand (xallocx).
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "api_sites.h"
#include "common.h"

#if defined(API_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(API_TCMALLOC)
#include <gperftools/tcmalloc.h>
#elif defined(API_MIMALLOC)
#include <mimalloc.h>
#else
#error "build with one of API_JEMALLOC, API_TCMALLOC, API_MIMALLOC"
#endif

extern "C" {

void* g_keep[64];
int g_nkeep;

static void keep(void* p) {
    TP_CHECK(p != NULL);
    TP_CHECK(g_nkeep < (int)(sizeof g_keep / sizeof g_keep[0]));
    g_keep[g_nkeep++] = p;
    escape(p);
}

static void* check(void* p) {
    TP_CHECK(p != NULL);
    escape(p);
    return p;
}

#if defined(API_JEMALLOC)

SITE void je_mallocx_site(void) {
    keep(mallocx(1001, 0));
}
SITE void je_mallocx_flags_site(void) {
    void* p = mallocx(1002, MALLOCX_ZERO | MALLOCX_ALIGN(64));
    TP_CHECK(((uintptr_t)p & 63) == 0);
    keep(p);
}
SITE void je_rallocx_site(void) {
    keep(rallocx(check(mallocx(101, 0)), 2003, 0));
}
SITE void je_sdallocx_site(void) {
    sdallocx(check(mallocx(301, 0)), 301, 0);
}
SITE void je_dallocx_site(void) {
    dallocx(check(mallocx(302, 0)), 0);
}
SITE void je_free_of_mallocx_site(void) {
    free(check(mallocx(303, 0)));
}
SITE void je_dallocx_of_malloc_site(void) {
    dallocx(check(malloc(304)), 0);
}
SITE void je_malloc_site(void) {
    keep(malloc(1005));
}

// xallocx resizes in place as far as it can and returns the block's real
// size: small blocks stay in their size class (1024 for 1000..1024, 1280
// for 1025..1280).
SITE void je_xallocx_grow_site(void) {
    void* p = check(mallocx(1000, 0));
    TP_CHECK(xallocx(p, 1010, 0, 0) == 1024);
    keep(p);
}
SITE void je_xallocx_extra_site(void) {
    void* p = check(mallocx(1100, 0));
    TP_CHECK(xallocx(p, 1150, 200, 0) == 1280);
    keep(p);
}
SITE void je_xallocx_shrink_site(void) {
    void* p = check(mallocx(1020, 0));
    TP_CHECK(xallocx(p, 900, 0, 0) == 1024);
    keep(p);
}
SITE void je_xallocx_fail_site(void) {
    void* p = check(mallocx(1030, 0));
    TP_CHECK(xallocx(p, 50000, 0, 0) == 1280);
    keep(p);
}

SITE void run_expand_sites(void) {
    je_xallocx_grow_site();
    je_xallocx_extra_site();
    je_xallocx_shrink_site();
    je_xallocx_fail_site();
}

SITE void run_sites(void) {
    je_mallocx_site();
    je_mallocx_flags_site();
    je_rallocx_site();
    je_sdallocx_site();
    je_dallocx_site();
    je_free_of_mallocx_site();
    je_dallocx_of_malloc_site();
    je_malloc_site();
}

#elif defined(API_TCMALLOC)

SITE void tc_malloc_site(void) {
    keep(tc_malloc(1011));
}
SITE void tc_calloc_site(void) {
    keep(tc_calloc(10, 101));
}
SITE void tc_realloc_site(void) {
    keep(tc_realloc(check(tc_malloc(102)), 2013));
}
SITE void tc_memalign_site(void) {
    keep(tc_memalign(64, 640));
}
SITE void tc_posix_memalign_site(void) {
    void* p = NULL;
    TP_CHECK(tc_posix_memalign(&p, 64, 256) == 0);
    keep(p);
}
SITE void tc_valloc_site(void) {
    keep(tc_valloc(123));
}
SITE void tc_skip_new_handler_site(void) {
    keep(tc_malloc_skip_new_handler(1019));
}
SITE void tc_free_site(void) {
    tc_free(check(tc_malloc(311)));
}
SITE void tc_free_sized_site(void) {
    tc_free_sized(check(tc_malloc(312)), 312);
}
SITE void tc_new_site(void) {
    keep(tc_new(713));
}
SITE void tc_newarray_site(void) {
    keep(tc_newarray(714));
}
SITE void tc_new_nothrow_site(void) {
    keep(tc_new_nothrow(715, std::nothrow));
}
SITE void tc_new_aligned_site(void) {
    keep(tc_new_aligned(716, std::align_val_t(64)));
}
SITE void tc_delete_site(void) {
    tc_delete(check(tc_new(317)));
}
SITE void tc_deletearray_sized_site(void) {
    tc_deletearray_sized(check(tc_newarray(318)), 318);
}
SITE void tc_plain_malloc_site(void) {
    keep(malloc(1005));
}

SITE void run_sites(void) {
    tc_malloc_site();
    tc_calloc_site();
    tc_realloc_site();
    tc_memalign_site();
    tc_posix_memalign_site();
    tc_valloc_site();
    tc_skip_new_handler_site();
    tc_free_site();
    tc_free_sized_site();
    tc_new_site();
    tc_newarray_site();
    tc_new_nothrow_site();
    tc_new_aligned_site();
    tc_delete_site();
    tc_deletearray_sized_site();
    tc_plain_malloc_site();
}

#else /* API_MIMALLOC */

SITE void mi_malloc_site(void) {
    keep(mi_malloc(1021));
}
SITE void mi_zalloc_site(void) {
    keep(mi_zalloc(1022));
}
SITE void mi_calloc_site(void) {
    keep(mi_calloc(10, 102));
}
SITE void mi_mallocn_site(void) {
    keep(mi_mallocn(10, 103));
}
SITE void mi_malloc_small_site(void) {
    keep(mi_malloc_small(48));
}
SITE void mi_malloc_aligned_site(void) {
    keep(mi_malloc_aligned(640, 64));
}
SITE void mi_zalloc_aligned_site(void) {
    keep(mi_zalloc_aligned(650, 64));
}
SITE void mi_calloc_aligned_site(void) {
    keep(mi_calloc_aligned(10, 66, 64));
}
SITE void mi_posix_memalign_site(void) {
    void* p = NULL;
    TP_CHECK(mi_posix_memalign(&p, 64, 257) == 0);
    keep(p);
}
SITE void mi_realloc_site(void) {
    keep(mi_realloc(check(mi_malloc(103)), 2023));
}
SITE void mi_rezalloc_site(void) {
    keep(mi_rezalloc(check(mi_zalloc(104)), 2024));
}
SITE void mi_reallocn_site(void) {
    keep(mi_reallocn(check(mi_mallocn(2, 50)), 10, 205));
}
SITE void mi_recalloc_site(void) {
    keep(mi_recalloc(check(mi_calloc(2, 51)), 10, 206));
}
SITE void mi_realloc_aligned_site(void) {
    keep(mi_realloc_aligned(check(mi_malloc_aligned(105, 64)), 2070, 64));
}
SITE void mi_reallocf_site(void) {
    keep(mi_reallocf(check(mi_malloc(107)), 2090));
}
SITE void mi_free_site(void) {
    mi_free(check(mi_malloc(321)));
}
SITE void mi_free_size_site(void) {
    mi_free_size(check(mi_malloc(322)), 322);
}
SITE void mi_free_aligned_site(void) {
    mi_free_aligned(check(mi_malloc_aligned(323, 64)), 64);
}
SITE void mi_new_site(void) {
    keep(mi_new(731));
}
SITE void mi_new_n_site(void) {
    keep(mi_new_n(10, 73));
}
SITE void mi_new_nothrow_site(void) {
    keep(mi_new_nothrow(733));
}
SITE void mi_new_aligned_site(void) {
    keep(mi_new_aligned(734, 64));
}
SITE void mi_plain_malloc_site(void) {
    keep(malloc(1005));
}

// The heap API: g_heap lives to the end; the destroy sites make, fill and
// destroy heaps of their own.
static mi_heap_t* g_heap;
static const char kStr99[] =
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu";
static_assert(sizeof kStr99 == 100);

SITE void mi_heap_malloc_site(void) {
    keep(mi_heap_malloc(g_heap, 1101));
}
SITE void mi_heap_zalloc_site(void) {
    keep(mi_heap_zalloc(g_heap, 1102));
}
SITE void mi_heap_calloc_site(void) {
    keep(mi_heap_calloc(g_heap, 10, 111));
}
SITE void mi_heap_mallocn_site(void) {
    keep(mi_heap_mallocn(g_heap, 10, 112));
}
SITE void mi_heap_malloc_small_site(void) {
    keep(mi_heap_malloc_small(g_heap, 56));
}
SITE void mi_heap_malloc_aligned_site(void) {
    keep(mi_heap_malloc_aligned(g_heap, 1130, 64));
}
SITE void mi_heap_malloc_aligned_at_site(void) {
    keep(mi_heap_malloc_aligned_at(g_heap, 1131, 64, 8));
}
SITE void mi_heap_zalloc_aligned_site(void) {
    keep(mi_heap_zalloc_aligned(g_heap, 1132, 64));
}
SITE void mi_heap_calloc_aligned_site(void) {
    keep(mi_heap_calloc_aligned(g_heap, 10, 114, 64));
}
SITE void mi_heap_realloc_site(void) {
    keep(mi_heap_realloc(g_heap, check(mi_heap_malloc(g_heap, 115)), 2150));
}
SITE void mi_heap_rezalloc_site(void) {
    keep(mi_heap_rezalloc(g_heap, check(mi_heap_zalloc(g_heap, 116)), 2160));
}
SITE void mi_heap_reallocn_site(void) {
    keep(mi_heap_reallocn(g_heap, check(mi_heap_mallocn(g_heap, 2, 59)), 10, 217));
}
SITE void mi_heap_recalloc_site(void) {
    keep(mi_heap_recalloc(g_heap, check(mi_heap_calloc(g_heap, 2, 60)), 10, 218));
}
SITE void mi_heap_reallocf_site(void) {
    keep(mi_heap_reallocf(g_heap, check(mi_heap_malloc(g_heap, 121)), 2190));
}
SITE void mi_heap_realloc_aligned_site(void) {
    keep(mi_heap_realloc_aligned(g_heap, check(mi_heap_malloc_aligned(g_heap, 122, 64)), 2200, 64));
}
SITE void mi_heap_strdup_site(void) {
    keep(mi_heap_strdup(g_heap, kStr99));
}
SITE void mi_heap_strndup_site(void) {
    keep(mi_heap_strndup(g_heap, kStr99, 50));
}
SITE void mi_heap_realpath_site(void) {
    char* p = mi_heap_realpath(g_heap, "/.", NULL);
    TP_CHECK(p && strcmp(p, "/") == 0);
    keep(p);
}
SITE void mi_heap_free_site(void) {
    mi_free(check(mi_heap_malloc(g_heap, 331)));
}
// Everything allocated from a heap that mi_heap_destroy then frees at once.
SITE void mi_heap_destroy_site(void) {
    mi_heap_t* h = mi_heap_new();
    TP_CHECK(h != NULL);
    check(mi_heap_malloc(h, 341));
    check(mi_heap_calloc(h, 2, 171));
    check(mi_heap_strdup(h, kStr99));
    check(mi_heap_realloc(h, check(mi_heap_malloc(h, 343)), 3430));
    check(mi_heap_zalloc_aligned(h, 344, 64));
    mi_heap_destroy(h);
}
// Plain calls while a heap is the thread's default allocate from it.
SITE void mi_heap_default_destroy_site(void) {
    mi_heap_t* h = mi_heap_new();
    TP_CHECK(h != NULL);
    mi_heap_t* old = mi_heap_set_default(h);
    check(malloc(351));
    check(mi_zalloc(352));
    check(mi_strdup(kStr99));
    mi_heap_set_default(old);
    mi_heap_destroy(h);
}
// mi_heap_delete gives a heap's blocks to the backing heap: they stay; a
// heap made after it (likely at the same address) destroys only its own.
SITE void mi_heap_delete_site(void) {
    mi_heap_t* e = mi_heap_new();
    TP_CHECK(e != NULL);
    keep(mi_heap_malloc(e, 361));
    mi_heap_delete(e);
    mi_heap_t* f = mi_heap_new();
    TP_CHECK(f != NULL);
    check(mi_heap_malloc(f, 362));
    mi_heap_destroy(f);
}

SITE void run_heap_sites(void) {
    g_heap = mi_heap_new();
    TP_CHECK(g_heap != NULL);
    mi_heap_malloc_site();
    mi_heap_zalloc_site();
    mi_heap_calloc_site();
    mi_heap_mallocn_site();
    mi_heap_malloc_small_site();
    mi_heap_malloc_aligned_site();
    mi_heap_malloc_aligned_at_site();
    mi_heap_zalloc_aligned_site();
    mi_heap_calloc_aligned_site();
    mi_heap_realloc_site();
    mi_heap_rezalloc_site();
    mi_heap_reallocn_site();
    mi_heap_recalloc_site();
    mi_heap_reallocf_site();
    mi_heap_realloc_aligned_site();
    mi_heap_strdup_site();
    mi_heap_strndup_site();
    mi_heap_realpath_site();
    mi_heap_free_site();
    mi_heap_destroy_site();
    mi_heap_default_destroy_site();
    mi_heap_delete_site();
}

// Strings: mimalloc's own strdup family allocates inside, without calling
// a probed entry point.
static char g_long[10001];
static char g_edge[4096];

SITE void mi_strdup_site(void) {
    keep(mi_strdup(kStr99));
}
SITE void mi_strndup_site(void) {
    keep(mi_strndup(kStr99, 40));
}
SITE void mi_strndup_whole_site(void) {
    keep(mi_strndup("thirty characters, exactly 30.", 200));
}
SITE void mi_strdup_long_site(void) {
    keep(mi_strdup(g_long));
}
SITE void mi_strdup_edge_site(void) {
    keep(mi_strdup(g_edge));
}
SITE void mi_strdup_free_site(void) {
    mi_free(check(mi_strdup(kStr99)));
}
SITE void mi_realpath_site(void) {
    char* p = mi_realpath("/.", NULL);
    TP_CHECK(p && strcmp(p, "/") == 0);
    keep(p);
}
SITE void mi_realpath_buf_site(void) {
    static char buf[PATH_MAX];
    TP_CHECK(mi_realpath("/.", buf) == buf);
}

SITE void run_string_sites(void) {
    memset(g_long, 'x', sizeof g_long - 1);
    memset(g_edge, 'y', sizeof g_edge - 1);
    mi_strdup_site();
    mi_strndup_site();
    mi_strndup_whole_site();
    mi_strdup_long_site();
    mi_strdup_edge_site();
    mi_strdup_free_site();
    mi_realpath_site();
    mi_realpath_buf_site();
}

// mi_expand resizes in place (up to the block's usable size: 1024 for
// these) and returns the block, or NULL.
SITE void mi_expand_grow_site(void) {
    void* p = check(mi_malloc(1000));
    TP_CHECK(mi_expand(p, 1020) == p);
    keep(p);
}
SITE void mi_expand_shrink_site(void) {
    void* p = check(mi_malloc(1010));
    TP_CHECK(mi_expand(p, 900) == p);
    keep(p);
}
SITE void mi_expand_fail_site(void) {
    void* p = check(mi_malloc(1001));
    TP_CHECK(mi_expand(p, 100000) == NULL);
    keep(p);
}
SITE void mi_expand_free_site(void) {
    void* p = check(mi_malloc(1002));
    TP_CHECK(mi_expand(p, 1015) == p);
    mi_free(p);
}

SITE void run_expand_sites(void) {
    mi_expand_grow_site();
    mi_expand_shrink_site();
    mi_expand_fail_site();
    mi_expand_free_site();
}

// A failed reallocf frees the block; a failed realloc keeps it.
// (volatile: the compiler would warn at calls it sees will fail)
static volatile size_t kTooBig = (size_t)PTRDIFF_MAX + 1;

SITE void mi_reallocf_fail_site(void) {
    TP_CHECK(mi_reallocf(check(mi_malloc(371)), kTooBig) == NULL);
}
SITE void mi_heap_reallocf_fail_site(void) {
    TP_CHECK(mi_heap_reallocf(g_heap, check(mi_heap_malloc(g_heap, 372)), kTooBig) == NULL);
}
SITE void mi_realloc_fail_site(void) {
    void* p = check(mi_malloc(373));
    TP_CHECK(mi_realloc(p, kTooBig) == NULL);
    keep(p);
}

SITE void run_reallocf_fail_sites(void) {
    g_heap = mi_heap_new();
    TP_CHECK(g_heap != NULL);
    mi_reallocf_fail_site();
    mi_heap_reallocf_fail_site();
    mi_realloc_fail_site();
}

SITE void run_sites(void) {
    mi_malloc_site();
    mi_zalloc_site();
    mi_calloc_site();
    mi_mallocn_site();
    mi_malloc_small_site();
    mi_malloc_aligned_site();
    mi_zalloc_aligned_site();
    mi_calloc_aligned_site();
    mi_posix_memalign_site();
    mi_realloc_site();
    mi_rezalloc_site();
    mi_reallocn_site();
    mi_recalloc_site();
    mi_realloc_aligned_site();
    mi_reallocf_site();
    mi_free_site();
    mi_free_size_site();
    mi_free_aligned_site();
    mi_new_site();
    mi_new_n_site();
    mi_new_nothrow_site();
    mi_new_aligned_site();
    mi_plain_malloc_site();
}

#endif

}  // extern "C"

int main(int argc, char** argv) {
    if (tp_has_arg(argc, argv, "--baseline")) return 0;
    int wait = tp_has_arg(argc, argv, "--wait");
    if (wait) {
        tp_ready();
        if (!tp_read_line()) return 1;
    }
    void (*run)(void) = run_sites;
#if defined(API_MIMALLOC)
    if (tp_has_arg(argc, argv, "--heap")) run = run_heap_sites;
    if (tp_has_arg(argc, argv, "--strings")) run = run_string_sites;
    if (tp_has_arg(argc, argv, "--reallocf-fail")) run = run_reallocf_fail_sites;
#endif
#if defined(API_MIMALLOC) || defined(API_JEMALLOC)
    if (tp_has_arg(argc, argv, "--expand")) run = run_expand_sites;
#endif
    run();
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    return 0;
}
