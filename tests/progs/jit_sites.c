/* jit_sites: an allocation made from code generated at run time, as a JIT
 * makes it. The stub lives in anonymous executable memory that no ELF file
 * describes: only the perf map this program writes, /tmp/perf-PID.map (the
 * convention JITs follow for perf), names it. It keeps a frame pointer, so
 * the unwinder, finding no table for anonymous memory, walks it by frame
 * pointer and then goes on with the tables of this -O2, frame-pointer-less
 * program.  Expected numbers: expect.h (JIT_*).
 *
 * Usage: jit_sites [--wait]  (protocol: common.h). The perf map is removed
 * at exit, so a report made after that names the stub only if memtop kept
 * what it read. */
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
SITE static stub_fn jit_make_stub(void) {
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
    stub_fn stub = jit_make_stub();
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
    return 0;
}
