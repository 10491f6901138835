/* c_sites: one named function per allocator call site, with known sizes.
 * Expected numbers: expect.h (C_*).  "@line NAME" marks the source line of
 * the allocation that stays outstanding for site NAME (runtime tests check
 * the file/line memtop reports against it).
 *
 * Usage: c_sites [--wait | --baseline]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "expect.h"

/* Kept pointers (external linkage so stores cannot be optimised away). */
void* g_keep[64];
int g_nkeep;

/* Sizes that must not be constant-folded by the compiler. */
volatile size_t g_huge = SIZE_MAX / 2;
volatile size_t g_bad_align = C_PM_FAIL_ALIGN;

static void keep(void* p) {
    TP_CHECK(p != NULL);
    TP_CHECK(g_nkeep < (int)(sizeof g_keep / sizeof g_keep[0]));
    g_keep[g_nkeep++] = p;
    escape(p);
}

SITE void leak_malloc(void) {
    for (int i = 0; i < C_LEAK_MALLOC_N; i++) {
        char* p = malloc(C_LEAK_MALLOC_SIZE); /* @line leak_malloc */
        keep(p);
        memset(p, 'a', C_LEAK_MALLOC_SIZE);
    }
}

SITE void leak_calloc(void) {
    char* p = calloc(C_LEAK_CALLOC_NMEMB, C_LEAK_CALLOC_SIZE); /* @line leak_calloc */
    keep(p);
}

SITE void temp_malloc(void) {
    for (int i = 0; i < C_TEMP_N; i++) {
        char* p = malloc(C_TEMP_SIZE);
        TP_CHECK(p != NULL);
        p[0] = (char)i;
        escape(p);
        free(p);
    }
}

SITE void realloc_grow(void) {
    char* p = malloc(C_GROW_SIZE1);
    TP_CHECK(p != NULL);
    memset(p, 'g', C_GROW_SIZE1);
    escape(p);
    p = realloc(p, C_GROW_SIZE2);
    TP_CHECK(p != NULL);
    memset(p, 'g', C_GROW_SIZE2);
    escape(p);
    p = realloc(p, C_GROW_SIZE3); /* @line realloc_grow */
    keep(p);
}

SITE void realloc_shrink(void) {
    char* p = malloc(C_SHRINK_SIZE1);
    TP_CHECK(p != NULL);
    memset(p, 's', C_SHRINK_SIZE1);
    escape(p);
    p = realloc(p, C_SHRINK_SIZE2); /* @line realloc_shrink */
    keep(p);
}

SITE void realloc_null(void) {
    char* p = realloc(NULL, C_RNULL_SIZE); /* @line realloc_null */
    keep(p);
}

SITE void realloc_zero(void) {
    char* p = malloc(C_RZERO_SIZE);
    TP_CHECK(p != NULL);
    p[0] = 'z';
    escape(p);
    char* q = realloc(p, 0); /* glibc: frees p, returns NULL */
    escape(q);
    TP_CHECK(q == NULL);
}

SITE void* realloc_fail_origin(void) {
    void* p = malloc(C_RFAIL_SIZE); /* @line realloc_fail_origin */
    keep(p);
    return g_keep[g_nkeep - 1];
}

SITE void realloc_fail(void* p) {
    void* q = realloc(p, g_huge);
    escape(q);
    TP_CHECK(q == NULL);
    escape(p);
}

SITE void malloc_fail(void) {
    void* p = malloc(g_huge);
    escape(p);
    TP_CHECK(p == NULL);
}

SITE void posix_memalign_ok(void) {
    void* p = NULL;
    int rc = posix_memalign(&p, C_PM_ALIGN, C_PM_SIZE); /* @line posix_memalign_ok */
    TP_CHECK(rc == 0);
    TP_CHECK(((uintptr_t)p % C_PM_ALIGN) == 0);
    keep(p);
}

SITE void posix_memalign_fail(void) {
    void* p = NULL;
    int rc = posix_memalign(&p, g_bad_align, C_PM_FAIL_SIZE);
    escape(p);
    TP_CHECK(rc == EINVAL);
    TP_CHECK(p == NULL);
}

SITE void aligned_alloc_site(void) {
    void* p = aligned_alloc(C_ALIGNED_ALIGN, C_ALIGNED_SIZE); /* @line aligned_alloc_site */
    keep(p);
}

SITE void memalign_site(void) {
    void* p = memalign(C_MEMALIGN_ALIGN, C_MEMALIGN_SIZE); /* @line memalign_site */
    keep(p);
}

SITE void valloc_site(void) {
    void* p = valloc(C_VALLOC_SIZE); /* @line valloc_site */
    keep(p);
}

SITE void pvalloc_site(void) {
    void* p = pvalloc(C_PVALLOC_SIZE); /* @line pvalloc_site */
    keep(p);
}

SITE void reallocarray_site(void) {
    void* p = reallocarray(NULL, C_RARRAY_NMEMB, C_RARRAY_SIZE); /* @line reallocarray_site */
    keep(p);
}

SITE void free_null_site(void) {
    for (int i = 0; i < C_FREE_NULL_N; i++) {
        void* volatile p = NULL;
        free(p);
    }
}

SITE void peak_site(void) {
    char* p = malloc(C_PEAK_BLOCK);
    TP_CHECK(p != NULL);
    memset(p, 'p', C_PEAK_BLOCK);
    escape(p);
    free(p);
}

SITE void run_sites(void) {
    leak_malloc();
    leak_calloc();
    temp_malloc();
    realloc_grow();
    realloc_shrink();
    realloc_null();
    realloc_zero();
    realloc_fail(realloc_fail_origin());
    malloc_fail();
    posix_memalign_ok();
    posix_memalign_fail();
    aligned_alloc_site();
    memalign_site();
    valloc_site();
    pvalloc_site();
    reallocarray_site();
    free_null_site();
    peak_site();
    TP_CHECK(g_nkeep == C_TOTAL_ALLOCS);
}

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
