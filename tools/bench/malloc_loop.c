/* The benchmark workload: a tight malloc(64)/free loop. With --wait it
 * prints "ready PID", waits for a line on stdin (a tracer attaches
 * meanwhile), runs, and prints "ns_per_pair X". MALLOC_LOOP_DEPTH=N runs
 * the loop N calls deep (built without frame pointers, like Debian's
 * packages), so that stack capture has a realistic depth to walk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

__attribute__((noinline)) static void* alloc_site(size_t n) {
    return malloc(n);
}

__attribute__((noinline)) static double run(long iters, int depth) {
    if (depth > 0) {
        double r = run(iters, depth - 1);
        __asm__ volatile("" ::: "memory"); /* not a tail call: a real frame per level */
        return r;
    }
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        void* volatile p = alloc_site(64);
        free(p);
    }
    return now_ns() - t0;
}

int main(int argc, char** argv) {
    long iters = argc > 1 ? atol(argv[1]) : 100000;
    const char* d = getenv("MALLOC_LOOP_DEPTH");
    int depth = d ? atoi(d) : 0;
    if (argc > 2 && strcmp(argv[2], "--wait") == 0) {
        printf("ready %d\n", getpid());
        fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof line, stdin)) return 1;
    }
    double t = run(iters, depth);
    printf("ns_per_pair %.1f\n", t / iters);
    fflush(stdout);
    return 0;
}
