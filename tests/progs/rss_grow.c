/* Resident memory that grows and shrinks by known amounts, for the system
 * view's tests. Protocol: prints "ready <pid>"; on each line read from stdin
 * takes the next step and prints its name: "grown" (RSS_GROW_MB of fresh
 * anonymous pages touched), "shrunk" (unmapped again); exits at EOF. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "expect.h"

/* The code that grows resident memory, for the growth-stack tests. */
__attribute__((noinline, used)) void touch_pages(char *p, size_t len)
{
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1; /* @line touch_pages */
    __asm__ volatile("" : : "r"(p) : "memory");
}

int main(void)
{
    char line[64];
    size_t len = (size_t)RSS_GROW_MB << 20;
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 1;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 2;
    /* One fault per 4 KiB page, as the growth test's arithmetic assumes:
     * where transparent huge pages are "always" (Debian's cloud kernels in
     * a guest with memory to spare), a fault would map 2 MiB. */
    madvise(p, len, MADV_NOHUGEPAGE);
    touch_pages(p, len);
    printf("grown\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 1;
    munmap(p, len);
    printf("shrunk\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin))
        ;
    return 0;
}
