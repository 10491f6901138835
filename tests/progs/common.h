/* Helpers shared by the memtop test programs (C and C++).
 *
 * Everything here avoids heap allocation on purpose: output goes through
 * write(2) from stack buffers and input through read(2), so the only heap
 * activity of a test program is the one at its named call sites (plus what the
 * C/C++ runtime does by itself, see expect.h).
 *
 * Attach protocol (--wait), used by the `memtop -p PID` tests:
 *   1. print "ready <pid>\n"
 *   2. block until one line is read from stdin
 *   3. do the allocations, print "done\n"
 *   4. block until stdin reaches EOF, then exit 0
 * Without --wait the program runs straight through and exits 0.
 */
#ifndef MEMTOP_TEST_PROGS_COMMON_H
#define MEMTOP_TEST_PROGS_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every call site lives in its own function that is never inlined, cloned,
 * merged (ICF) or otherwise touched by inter-procedural optimisation, so the
 * immediate caller of the allocator is exactly that named function. */
#define SITE __attribute__((noipa, used))

/* Make the compiler believe the memory pointed to by p is read and written,
 * so malloc/free (or new/delete) pairs cannot be elided and stores are kept. */
static inline void escape(void* p) {
    __asm__ volatile("" : : "g"(p) : "memory");
}

static inline void tp_write_all(int fd, const char* buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static inline void tp_printf(int fd, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void tp_printf(int fd, const char* fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
    tp_write_all(fd, buf, (size_t)n);
}

/* Self-check failure: message on stderr, distinctive exit status. */
#define TP_EXIT_SELFCHECK 3
#define TP_CHECK(cond)                                                                 \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            tp_printf(2, "%s:%d: self-check failed: %s\n", __FILE__, __LINE__, #cond); \
            _exit(TP_EXIT_SELFCHECK);                                                  \
        }                                                                              \
    } while (0)

/* Read one line from stdin (returns 1), or 0 on EOF before any newline. */
static inline int tp_read_line(void) {
    char c;
    for (;;) {
        ssize_t n = read(0, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        if (c == '\n') return 1;
    }
}

/* Block until stdin is closed. */
static inline void tp_wait_eof(void) {
    char buf[64];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
    }
}

static inline void tp_ready(void) {
    tp_printf(1, "ready %d\n", (int)getpid());
}
static inline void tp_done(void) {
    tp_write_all(1, "done\n", 5);
}

static inline int tp_has_arg(int argc, char** argv, const char* arg) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], arg) == 0) return 1;
    return 0;
}

#endif
