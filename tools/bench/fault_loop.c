/* Page-fault-heavy workload: map fresh anonymous memory, touch every page
 * (one first-touch fault each), unmap, repeat. Prints ns per page. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char** argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 20;
    size_t len = 64UL << 20;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long r = 0; r < rounds; r++) {
        char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 1;
        for (size_t i = 0; i < len; i += 4096) p[i] = 1;
        munmap(p, len);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("ns_per_page %.1f\n", ns / (rounds * (len / 4096)));
    return 0;
}
