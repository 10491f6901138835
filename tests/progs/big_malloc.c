/* One malloc big enough that glibc maps it (BIG_MALLOC_SIZE, above its mmap
 * threshold): the mmap is made inside malloc, so the mapping stack walks
 * through malloc's frame, whose return address a return probe replaced with
 * the kernel's trampoline. Its caller and main must still be named.
 * A small malloc comes first: with a target, mappings are recorded from a
 * process's first traced allocation on.
 * Protocol as common.h (--wait): ready, a line, the mallocs, done, EOF. */
#include "common.h"
#include "expect.h"

static void* g_block;
static void* g_first;

SITE void first_site(void) {
    g_first = malloc(BIG_MALLOC_FIRST);
    escape(g_first);
}

SITE void big_site(void) {
    g_block = malloc(BIG_MALLOC_SIZE);
    escape(g_block);
}

int main(int argc, char** argv) {
    int wait = tp_has_arg(argc, argv, "--wait");
    if (wait) {
        tp_ready();
        if (!tp_read_line()) return 1;
    }
    first_site();
    big_site();
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    free(g_block);
    free(g_first);
    return 0;
}
