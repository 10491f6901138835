/* Functions whose call-frame information takes the shapes the BPF unwinder
 * follows: built into shared libraries by tests/unit/CMakeLists.txt, once
 * with .eh_frame, once with .debug_frame only, once with no CFI at all. */
#include <stddef.h>
#include <string.h>

#define KEEP __attribute__((noinline, noipa, used))

/* No frame: CFA = rsp + 8 throughout. */
KEEP long fixture_leaf(long a, long b) {
    return a * 3 + b;
}

/* Pushes callee-saved registers and grows the stack: CFA = rsp + N with N
 * changing at every push and pop. */
KEEP long fixture_pushes(long n, long (*f)(long, long)) {
    volatile char buf[200];
    long s = 0;
    for (long i = 0; i < n; i++) {
        buf[i % sizeof buf] = (char)i;
        s += f(i, buf[(i * 7) % sizeof buf]);
    }
    return s;
}

/* A variable-length array makes GCC keep a frame pointer even with
 * -fomit-frame-pointer: CFA = rbp + 16, rbp saved at CFA - 16. */
KEEP long fixture_vla(size_t n, long (*f)(long, long)) {
    char buf[n + 1];
    memset(buf, 1, n + 1);
    return f((long)buf[n / 2], (long)n);
}

/* A 4 MiB array on the stack: CFA = rsp + 4 MiB and more, beyond 16 bits
 * of 8-byte units (rows keep 21). */
KEEP long fixture_big_frame(long n) {
    volatile char buf[4 << 20];
    for (long i = 0; i < n; i++) buf[(size_t)i * 4096 % sizeof buf] = (char)i;
    return buf[(size_t)n % sizeof buf];
}

KEEP long fixture_entry(long n) {
    return fixture_pushes(n, fixture_leaf) + fixture_vla((size_t)n, fixture_leaf) + fixture_big_frame(n);
}
