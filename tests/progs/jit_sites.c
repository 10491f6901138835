/* jit_sites: an allocation made from code generated at run time, as a JIT
 * makes it. The stub lives in anonymous executable memory that no ELF file
 * describes: only the perf map this program writes, /tmp/perf-PID.map (the
 * convention JITs follow for perf), names it. It keeps a frame pointer, so
 * the unwinder, finding no table for anonymous memory, walks it by frame
 * pointer and then goes on with the tables of this -O2, frame-pointer-less
 * program.  Expected numbers: expect.h (JIT_*).
 *
 * Usage: jit_sites [--wait] [--perf-map=random|shadow|absurd]  (protocol:
 * common.h). The perf map is removed at exit, so a report made after that
 * names the stub only if memtop kept what it read.
 *
 * --perf-map=KIND writes a hostile map instead, one memtop must not name
 * the stub from, and exits JIT_HOSTILE_EXIT: `random`, 50 MB of random
 * bytes; `shadow`, a symlink to /etc/shadow; `absurd`, lines with absurd
 * sizes that would each cover the stub, and lines that overlap (expect.h). */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

#include "common.h"
#include "expect.h"

typedef void* (*stub_fn)(size_t);

static char g_map_path[64];
void* g_jit_keep;

/* Copies the stub into fresh anonymous memory, writable while it is written
 * and executable (not writable) after, and names it in the perf map. */
/* The hostile perf maps of --perf-map=KIND, at g_map_path. No heap use. */
static void write_hostile_map(const char* kind, void* mem) {
    unsigned long stub = (unsigned long)(uintptr_t)mem;
    unlink(g_map_path);
    if (strcmp(kind, "shadow") == 0) {
        TP_CHECK(symlink("/etc/shadow", g_map_path) == 0);
        return;
    }
    int fd = open(g_map_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    TP_CHECK(fd >= 0);
    if (strcmp(kind, "random") == 0) {
        static char buf[1 << 16];
        int rnd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        TP_CHECK(rnd >= 0);
        for (long left = JIT_RANDOM_MAP_BYTES; left > 0; left -= (long)sizeof buf) {
            size_t got = 0;
            while (got < sizeof buf) {
                ssize_t n = read(rnd, buf + got, sizeof buf - got);
                TP_CHECK(n > 0);
                got += (size_t)n;
            }
            tp_write_all(fd, buf, sizeof buf);
        }
        close(rnd);
    } else {
        TP_CHECK(strcmp(kind, "absurd") == 0);
        /* JIT_ABSURD_LINES, each covering the stub were it kept. */
        tp_printf(fd, "0 ffffffffffff everything_below_2_48\n");        /* over 1 GiB */
        tp_printf(fd, "%lx 0 empty_at_stub\n", stub);                   /* size 0 */
        tp_printf(fd, "%lx 40000001 just_over_1_GiB\n", stub - 0x1000); /* over 1 GiB */
        tp_printf(fd, "%lx ffffffffffffffff wraps_past_2_64\n", stub);  /* over 1 GiB, wraps */
        tp_printf(fd, "ffffffffffffff00 200 kernel_space_wrapping\n");  /* past user space */
        /* JIT_ABSURD_USED lines kept, JIT_OVERLAPPING_LINES of them over
         * earlier ones, far below the stub. */
        tp_printf(fd, "1000 100 low_a\n");
        tp_printf(fd, "1080 100 low_b_over_a\n");
        tp_printf(fd, "1000 10 low_c_over_a\n");
    }
    TP_CHECK(close(fd) == 0);
}

SITE static stub_fn jit_make_stub(const char* hostile) {
    uint64_t target = (uint64_t)(uintptr_t)&malloc;
    unsigned char code[] = {
        0x55,                   /* push %rbp              keep a frame pointer: */
        0x48, 0x89, 0xe5,       /* mov  %rsp,%rbp         the caller's rbp is at [rbp] */
        0x48, 0xb8,             /* movabs $target,%rax    (malloc's absolute address, */
        0, 0, 0, 0, 0, 0, 0, 0, /*                         patched in below) */
        0xff, 0xd0,             /* call *%rax             malloc(%rdi): the size is */
                                /*                        the stub's own argument */
        0x5d,                   /* pop  %rbp */
        0xc3,                   /* ret                    malloc's result in %rax */
    };
    memcpy(&code[6], &target, sizeof target);
    TP_CHECK(6 + sizeof target + 2 == JIT_STUB_RET_OFFSET);

    void* mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TP_CHECK(mem != MAP_FAILED);
    memcpy(mem, code, sizeof code);
    TP_CHECK(mprotect(mem, 4096, PROT_READ | PROT_EXEC) == 0);

    /* "START SIZE NAME", hex; written with write(2): no heap use here. */
    snprintf(g_map_path, sizeof g_map_path, "/tmp/perf-%d.map", (int)getpid());
    if (hostile) {
        write_hostile_map(hostile, mem);
        return (stub_fn)mem;
    }
    int fd = open(g_map_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    TP_CHECK(fd >= 0);
    tp_printf(fd, "%lx %zx %s\n", (unsigned long)(uintptr_t)mem, sizeof code, JIT_STUB_NAME);
    TP_CHECK(close(fd) == 0);
    return (stub_fn)mem;
}

SITE void* jit_call_site(stub_fn stub) {
    void* p = stub(JIT_SIZE); /* @line jit_call_site */
    escape(p);
    return p;
}

int main(int argc, char** argv) {
    int wait = tp_has_arg(argc, argv, "--wait");
    const char* hostile = NULL;
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--perf-map=", 11) == 0) hostile = argv[i] + 11;
    stub_fn stub = jit_make_stub(hostile);
    if (wait) {
        tp_ready();
        if (!tp_read_line()) {
            unlink(g_map_path);
            return 1;
        }
    }
    g_jit_keep = jit_call_site(stub); /* @line main */
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    /* As a JIT that cleans up after itself: the file goes before the
     * process does. */
    TP_CHECK(unlink(g_map_path) == 0);
    return hostile ? JIT_HOSTILE_EXIT : 0;
}
