/* Resident memory that grows and shrinks by known amounts, for the system
 * view's tests. Protocol: prints "ready <pid>"; on each line read from stdin
 * takes the next step and prints its name: "grown" (RSS_GROW_MB of fresh
 * anonymous pages touched), "shrunk" (unmapped again); exits at EOF.
 * With --three-ways, "grown" also touches RSS_GROW_HEAP_MB of a malloc'd
 * block (touch_heap) and RSS_GROW_STACK_MB of a thread's stack
 * (touch_stack), each in its own function. With --warm-up, each line
 * "warm" before the first other line touches 1 MiB more in warm_up() and
 * prints "warmed": the growth tests repeat it until memtop shows a whole
 * stack for it, so that the unwind tables memtop builds when it first meets
 * this program's files are in before the measured growth. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "expect.h"

/* The code that grows resident memory, for the growth-stack tests. */
__attribute__((noinline, used)) void touch_pages(char* p, size_t len) {
    for (size_t i = 0; i < len; i += 4096) p[i] = 1; /* @line touch_pages */
    __asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline, used)) void touch_heap(char* p, size_t len) {
    for (size_t i = 0; i < len; i += 4096) p[i] = 2; /* @line touch_heap */
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* An array on the thread's own stack, touched page by page from its far
 * end, so every page is a first touch of the stack mapping. */
__attribute__((noinline, used)) void touch_stack(void) {
    char buf[RSS_GROW_STACK_MB << 20];
    for (size_t i = sizeof buf; i >= 4096; i -= 4096) buf[i - 4096] = 3; /* @line touch_stack */
    __asm__ volatile("" : : "r"(buf) : "memory");
}

__attribute__((noinline, used)) void warm_up(void) {
    size_t len = 1 << 20;
    char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) exit(6);
    for (size_t i = 0; i < len; i += 4096) p[i] = 4; /* @line warm_up */
    __asm__ volatile("" : : "r"(p) : "memory");
}

static void* stack_thread(void* arg) {
    (void)arg;
    touch_stack();
    return NULL;
}

/* Pages of 4 KiB, one fault each, as the growth tests' arithmetic assumes:
 * where transparent huge pages are "always" (Debian's cloud kernels in a
 * guest with memory to spare), a fault could map 2 MiB. */
static void no_huge_pages(void* p, size_t len) {
    madvise((void*)((unsigned long)p & ~4095UL), len + 4096, MADV_NOHUGEPAGE);
}

int main(int argc, char** argv) {
    char line[64];
    int three_ways = 0, warm = 0;
    for (int i = 1; i < argc; i++) {
        three_ways |= strcmp(argv[i], "--three-ways") == 0;
        warm |= strcmp(argv[i], "--warm-up") == 0;
    }
    size_t len = (size_t)RSS_GROW_MB << 20;
    printf("ready %d\n", getpid());
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    while (warm && strcmp(line, "warm\n") == 0) {
        warm_up();
        printf("warmed\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) return 1;
    }
    char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 2;
    no_huge_pages(p, len);
    touch_pages(p, len);
    if (three_ways) {
        size_t heap_len = (size_t)RSS_GROW_HEAP_MB << 20;
        char* h = malloc(heap_len);
        if (!h) return 3;
        no_huge_pages(h, heap_len);
        touch_heap(h, heap_len);
        /* The thread's stack: room for the array and the calls around it,
         * mapped by pthread_create, with no huge pages either. */
        size_t stack_len = ((size_t)RSS_GROW_STACK_MB << 20) + (1 << 20);
        void* stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) return 4;
        no_huge_pages(stack, stack_len);
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setstack(&attr, stack, stack_len);
        if (pthread_create(&t, &attr, stack_thread, NULL) != 0) return 5;
        pthread_join(t, NULL);
    }
    printf("grown\n");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) return 1;
    munmap(p, len);
    printf("shrunk\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin))
        ;
    return 0;
}
