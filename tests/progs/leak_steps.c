/* leak_steps: a heap that grows at exactly one site between two
 * checkpoints (memtop report --diff / --diff-from). Expected numbers:
 * leak_steps.h.
 *
 * Usage: leak_steps [--wait] [--leak]
 *   --wait  the attach protocol (common.h), in two steps: "ready <pid>",
 *           a line -> step 1 -> "done", a line -> step 2 -> "leaked",
 *           then EOF on stdin -> exit 0.
 *   without --wait: step 1, then step 2 if --leak, then exit 0 (nothing
 *           freed: the run's last report holds it all).
 * Step 1: steady_keep keeps LS_KEEP_BYTES, steady_temp allocates and frees.
 * Step 2: grow_leak keeps LS_LEAK_BYTES (the one site that grows) and
 *         steady_temp runs again (its outstanding bytes stay 0).
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "leak_steps.h"

void* g_kept[LS_KEEP_N + LS_LEAK_N];
int g_nkept;

static void keep(void* p) {
    TP_CHECK(p != NULL);
    TP_CHECK(g_nkept < (int)(sizeof g_kept / sizeof g_kept[0]));
    g_kept[g_nkept++] = p;
    escape(p);
}

SITE void steady_keep(void) {
    for (int i = 0; i < LS_KEEP_N; i++) {
        char* p = malloc(LS_KEEP_SIZE); /* @line steady_keep */
        keep(p);
        memset(p, 'k', LS_KEEP_SIZE);
    }
}

SITE void steady_temp(void) {
    for (int i = 0; i < LS_TEMP_N; i++) {
        char* p = malloc(LS_TEMP_SIZE);
        TP_CHECK(p != NULL);
        p[0] = (char)i;
        escape(p);
        free(p);
    }
}

SITE void grow_leak(void) {
    for (int i = 0; i < LS_LEAK_N; i++) {
        char* p = malloc(LS_LEAK_SIZE); /* @line grow_leak */
        keep(p);
        memset(p, 'l', LS_LEAK_SIZE);
    }
}

int main(int argc, char** argv) {
    int wait = tp_has_arg(argc, argv, "--wait");
    int leak = tp_has_arg(argc, argv, "--leak");
    if (wait) {
        tp_ready();
        if (!tp_read_line()) return 0;
    }
    steady_keep();
    steady_temp();
    if (wait) {
        tp_done();
        if (!tp_read_line()) return 0;
    }
    if (wait || leak) {
        grow_leak();
        steady_temp();
    }
    if (wait) {
        tp_write_all(1, "leaked\n", 7);
        tp_wait_eof();
    }
    return 0;
}
