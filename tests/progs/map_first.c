/* Maps and touches anonymous memory before it makes any heap allocation (it
 * makes none at all: output goes through write(2), see common.h), for the
 * tests of a target's mapping and growth stacks before its first malloc.
 * map_first_site maps MAPFIRST_KB, touch_first_site touches every page.
 *
 * Usage: map_first [--wait]  (--wait: common.h's attach protocol) */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "common.h"
#include "expect.h"

SITE char* map_first_site(void) {
    void* p = mmap(NULL, MAPFIRST_KB * 1024UL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TP_CHECK(p != MAP_FAILED);
    /* Small pages: a transparent huge page would take one fault for 2 MiB. */
    madvise(p, MAPFIRST_KB * 1024UL, MADV_NOHUGEPAGE);
    return (char*)p;
}

SITE void touch_first_site(char* p) {
    for (unsigned long off = 0; off < MAPFIRST_KB * 1024UL; off += 4096) p[off] = 1;
    escape(p);
}

int main(int argc, char** argv) {
    int wait = tp_has_arg(argc, argv, "--wait");
    if (wait) {
        tp_ready();
        if (!tp_read_line()) return 1;
    }
    touch_first_site(map_first_site());
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    return 0;
}
