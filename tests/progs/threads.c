/* threads: N threads, each does K x (malloc(32); free) in thread_temp(), then
 * (after a barrier, so the peak is exactly the kept bytes) keeps M x
 * malloc(48) in thread_keep().  Expected numbers: expect.h (THR_*).
 *
 * Usage: threads [--wait | --baseline] [N [K [M]]]   (defaults 8 1000 10)
 *
 * Threads run on mmap'ed user stacks so that glibc frees each thread's DTV
 * (calloc'ed inside pthread_create) in pthread_join: the only outstanding
 * heap blocks at exit are the kept ones.  With --wait the threads are created
 * before "ready" is printed and wait on a barrier, so a tracer attached after
 * "ready" sees exactly N*(K+M) allocations and N*K frees.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "common.h"
#include "expect.h"

#define MAX_THREADS 256
#define MAX_KEEP 256
#define STACK_SIZE (256 * 1024)

static int g_n = THR_N, g_k = THR_K, g_m = THR_M;
static pthread_barrier_t g_start, g_mid;
void* g_keep[MAX_THREADS][MAX_KEEP];

SITE void thread_temp(void) {
    for (int i = 0; i < g_k; i++) {
        char* p = malloc(THR_TEMP_SIZE);
        TP_CHECK(p != NULL);
        p[0] = (char)i;
        escape(p);
        free(p);
    }
}

SITE void thread_keep(int idx) {
    for (int i = 0; i < g_m; i++) {
        char* p = malloc(THR_KEEP_SIZE); /* @line thread_keep */
        TP_CHECK(p != NULL);
        p[0] = (char)i;
        g_keep[idx][i] = p;
        escape(p);
    }
}

SITE void* thread_main(void* arg) {
    int idx = (int)(long)arg;
    pthread_barrier_wait(&g_start);
    thread_temp();
    pthread_barrier_wait(&g_mid);
    thread_keep(idx);
    escape(g_keep[idx]);
    return NULL;
}

int main(int argc, char** argv) {
    if (tp_has_arg(argc, argv, "--baseline")) return 0;
    int wait = 0, pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0) {
            wait = 1;
            continue;
        }
        int v = atoi(argv[i]);
        if (pos == 0)
            g_n = v;
        else if (pos == 1)
            g_k = v;
        else if (pos == 2)
            g_m = v;
        pos++;
    }
    TP_CHECK(g_n >= 1 && g_n <= MAX_THREADS);
    TP_CHECK(g_k >= 0 && g_m >= 0 && g_m <= MAX_KEEP);

    TP_CHECK(pthread_barrier_init(&g_start, NULL, (unsigned)g_n + 1) == 0);
    TP_CHECK(pthread_barrier_init(&g_mid, NULL, (unsigned)g_n) == 0);

    pthread_t tids[MAX_THREADS];
    char* stacks = mmap(NULL, (size_t)g_n * STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TP_CHECK(stacks != MAP_FAILED);
    for (int i = 0; i < g_n; i++) {
        pthread_attr_t attr;
        TP_CHECK(pthread_attr_init(&attr) == 0);
        TP_CHECK(pthread_attr_setstack(&attr, stacks + (size_t)i * STACK_SIZE, STACK_SIZE) == 0);
        TP_CHECK(pthread_create(&tids[i], &attr, thread_main, (void*)(long)i) == 0);
        pthread_attr_destroy(&attr);
    }
    if (wait) {
        tp_ready();
        if (!tp_read_line()) return 1;
    }
    pthread_barrier_wait(&g_start);
    for (int i = 0; i < g_n; i++) TP_CHECK(pthread_join(tids[i], NULL) == 0);
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    return 0;
}
