/* Syscall-heavy workload: a cheap syscall (getppid) in a loop. Every syscall
 * of the host passes memtop's syscall tracepoint programs (bpf/mappings.h),
 * which act on mmap, munmap, mremap and brk only: this is what the others
 * pay. Prints ns per call. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("ns_per_call %.1f\n", ns / n);
    return 0;
}
