/* sample_sites: three call sites of known size for the --sample tests
 * (tests/runtime/test_sample.cpp), each in blocks of one size so that every
 * block is sampled with the same probability:
 *   sample_small  64 MiB in 1 KiB blocks, every second one freed at once
 *                 (32 MiB outstanding: totals and outstanding differ);
 *   sample_mid     8 MiB in 64 KiB blocks, kept;
 *   sample_big     4 MiB in 1 MiB blocks (mmap'd by glibc), kept.
 * Everything kept is freed only by the exit. Sizes: expect.h (SAMPLE_*).
 *
 * Usage: sample_sites [--many]
 *   --many  instead: sample_many keeps SAMPLE_MANY_N blocks of
 *           SAMPLE_MANY_SIZE (more than the in-process sampler's set holds).
 */
#include <stdlib.h>

#include "common.h"
#include "expect.h"

static void* g_small[SAMPLE_SMALL_N / 2];
static void* g_mid[SAMPLE_MID_N];
static void* g_big[SAMPLE_BIG_N];

SITE void sample_small(void) {
    for (int i = 0; i < SAMPLE_SMALL_N; i++) {
        char* p = malloc(SAMPLE_SMALL_SIZE);
        TP_CHECK(p != NULL);
        p[0] = (char)i;
        escape(p);
        if (i & 1)
            free(p);
        else
            g_small[i / 2] = p;
    }
}

SITE void sample_mid(void) {
    for (int i = 0; i < SAMPLE_MID_N; i++) {
        g_mid[i] = malloc(SAMPLE_MID_SIZE);
        TP_CHECK(g_mid[i] != NULL);
        escape(g_mid[i]);
    }
}

SITE void sample_big(void) {
    for (int i = 0; i < SAMPLE_BIG_N; i++) {
        g_big[i] = malloc(SAMPLE_BIG_SIZE);
        TP_CHECK(g_big[i] != NULL);
        escape(g_big[i]);
    }
}

static void* g_many[SAMPLE_MANY_N];

SITE void sample_many(void) {
    for (int i = 0; i < SAMPLE_MANY_N; i++) {
        g_many[i] = malloc(SAMPLE_MANY_SIZE);
        TP_CHECK(g_many[i] != NULL);
        escape(g_many[i]);
    }
}

int main(int argc, char** argv) {
    if (tp_has_arg(argc, argv, "--many")) {
        sample_many();
        return 0;
    }
    sample_small();
    sample_mid();
    sample_big();
    return 0;
}
