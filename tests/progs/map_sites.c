/* Anonymous memory mapped without malloc, by known amounts per function, for
 * the mapping-stack tests (expect.h, MAP_*). Protocol: prints "ready <pid>";
 * on a line from stdin maps everything and prints "mapped"; on the next,
 * unmaps map_keep's mapping and gives grow_brk's heap back, prints
 * "unmapped"; exits at EOF. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "expect.h"

#define KB 1024UL
#define MB (1024 * KB)

static void* map_rw(void* at, size_t len, int flags) {
    void* p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (p == MAP_FAILED) exit(2);
    return p;
}

/* Each site maps through map_rw or mmap itself: frames[1] or [2] is the site. */
__attribute__((noinline, noipa)) char* map_keep(void) {
    return map_rw(NULL, MAP_KEEP_KB * KB, 0);
}

__attribute__((noinline, noipa)) void map_trim(void) {
    char* p = map_rw(NULL, 5 * MB, 0);
    munmap(p, MB);          /* the head */
    munmap(p + 4 * MB, MB); /* the tail */
}

__attribute__((noinline, noipa)) void map_gone(void) {
    char* p = map_rw(NULL, 2 * MB, 0);
    munmap(p, 2 * MB);
}

__attribute__((noinline, noipa)) void map_grow(void) {
    char* p = map_rw(NULL, MB, 0);
    if (mremap(p, MB, MAP_GROW_KB * KB, MREMAP_MAYMOVE) == MAP_FAILED) exit(3);
}

__attribute__((noinline, noipa)) void map_reserve(void) {
    if (mmap(NULL, 8 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED) exit(4);
}

__attribute__((noinline, noipa)) void map_commit(void) {
    char* p = mmap(NULL, 4 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) exit(5);
    map_rw(p + MB, MAP_COMMIT_KB * KB, MAP_FIXED);
}

__attribute__((noinline, noipa)) void map_fixed(void) {
    char* p = map_rw(NULL, 2 * MB, 0);
    map_rw(p + MB, MB, MAP_FIXED);
}

__attribute__((noinline, noipa)) void grow_brk(long bytes) {
    if (sbrk(bytes) == (void*)-1) exit(6);
}

int main(void) {
    char line[64];
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    char* keep = map_keep();
    map_trim();
    map_gone();
    map_grow();
    map_reserve();
    map_commit();
    map_fixed();
    grow_brk(MAP_BRK_KB * KB);
    printf("mapped\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    munmap(keep, MAP_KEEP_KB * KB);
    grow_brk(-(long)(MAP_BRK_KB * KB));
    printf("unmapped\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin))
        ;
    return 0;
}
