// api_sites: an allocator's own API called by name, one named function per
// call site (api_sites.h has what memtop must report for each). Built once
// per allocator: API_JEMALLOC (-ljemalloc), API_TCMALLOC
// (-ltcmalloc_minimal), API_MIMALLOC (-lmimalloc). Site functions are
// extern "C", so frames[0].function is their plain name.
//
// Usage: api_sites_X [--wait | --baseline]
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
    run_sites();
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    return 0;
}
