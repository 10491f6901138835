/* Allocations on both sides of a window the test opens, for the delta heap
 * profile (/debug/pprof/heap?seconds=N): the numbers are in expect.h
 * (delta_sites). Protocol (stdin-driven, so the test decides when the
 * window's allocations happen): prints "ready <pid>"; on the first line read
 * makes the allocations before the window and prints "before"; on the
 * second makes the window's and prints "during"; exits 0 at EOF. */
#include "common.h"
#include "expect.h"

static void* g_held;
static void* g_freed;
static void* g_window[DELTA_WINDOW_N];

SITE void held_site(void) {
    g_held = malloc(DELTA_HELD_SIZE);
    escape(g_held);
}

SITE void freed_site(void) {
    g_freed = malloc(DELTA_FREED_SIZE);
    escape(g_freed);
}

SITE void window_site(int i) {
    g_window[i] = malloc(DELTA_WINDOW_SIZE);
    escape(g_window[i]);
}

SITE void churn_site(void) {
    void* p = malloc(DELTA_CHURN_SIZE);
    escape(p);
    free(p);
}

int main(void) {
    tp_ready();
    if (!tp_read_line()) return 1;
    held_site();
    freed_site();
    tp_printf(1, "before\n");
    if (!tp_read_line()) return 1;
    for (int i = 0; i < DELTA_WINDOW_N; i++) window_site(i);
    for (int i = 0; i < DELTA_CHURN_N; i++) churn_site();
    free(g_freed);
    tp_printf(1, "during\n");
    while (tp_read_line()) {
    }
    return 0;
}
