/* forker: fork and exec behaviour.  Expected numbers: expect.h (FORK_*, EXEC_*).
 *
 * forker [--wait]
 *   parent_site() keeps FORK_PARENT_N x FORK_PARENT_SIZE, then fork().
 *   Child: child_site() keeps FORK_CHILD_SIZE, child_free_inherited() frees
 *   one block inherited from the parent (it must not change any count),
 *   child_reuse_site() keeps FORK_PARENT_SIZE (likely at the address just
 *   freed), prints "child <pid>\n" (stdout with --wait, else stderr) and
 *   signals the parent through a pipe.  Parent: waits for that handshake,
 *   prints "done\n" (--wait).  With --wait both then block until stdin
 *   closes.  The parent reaps the child and exits with 0 if the child
 *   exited with 0.
 *
 * forker --exec [--wait]
 *   pre_exec_site() keeps EXEC_PRE_N x EXEC_PRE_SIZE, pre_exec_touch() maps
 *   and touches EXEC_PRE_TOUCH_MB of anonymous memory, then the process
 *   re-executes itself (/proc/self/exe) with --after-exec; post_exec_site()
 *   keeps EXEC_POST_SIZE; then "done\n" and wait for EOF (--wait).
 *
 * With --wait, "ready <pid>\n" is printed first and one stdin line awaited
 * (attach protocol, see common.h).  --baseline exits immediately.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "common.h"
#include "expect.h"

void* g_parent[FORK_PARENT_N];
void* g_child[FORK_CHILD_ALLOCS];
void* g_exec[EXEC_PRE_N + 1];

SITE void parent_site(void) {
    for (int i = 0; i < FORK_PARENT_N; i++) {
        char* p = malloc(FORK_PARENT_SIZE); /* @line parent_site */
        TP_CHECK(p != NULL);
        p[0] = 'P';
        g_parent[i] = p;
        escape(p);
    }
}

SITE void child_site(void) {
    char* p = malloc(FORK_CHILD_SIZE); /* @line child_site */
    TP_CHECK(p != NULL);
    p[0] = 'C';
    g_child[0] = p;
    escape(p);
}

SITE void child_free_inherited(void) {
    escape(g_parent[0]);
    free(g_parent[0]);
    g_parent[0] = NULL;
}

SITE void child_reuse_site(void) {
    char* p = malloc(FORK_PARENT_SIZE); /* @line child_reuse_site */
    TP_CHECK(p != NULL);
    p[0] = 'R';
    g_child[1] = p;
    escape(p);
}

SITE void pre_exec_site(void) {
    for (int i = 0; i < EXEC_PRE_N; i++) {
        char* p = malloc(EXEC_PRE_SIZE); /* @line pre_exec_site */
        TP_CHECK(p != NULL);
        p[0] = 'E';
        g_exec[i] = p;
        escape(p);
    }
}

SITE void pre_exec_touch(void) {
    size_t len = (size_t)EXEC_PRE_TOUCH_MB << 20;
    char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    TP_CHECK(p != MAP_FAILED);
    for (size_t off = 0; off < len; off += 4096) p[off] = 'T';
    escape(p);
}

SITE void post_exec_site(void) {
    char* p = malloc(EXEC_POST_SIZE); /* @line post_exec_site */
    TP_CHECK(p != NULL);
    p[0] = 'X';
    g_exec[EXEC_PRE_N] = p;
    escape(p);
}

SITE int run_fork(int wait) {
    parent_site();
    int hs[2];
    TP_CHECK(pipe(hs) == 0);
    pid_t pid = fork();
    TP_CHECK(pid >= 0);
    if (pid == 0) {
        close(hs[0]);
        child_site();
        child_free_inherited();
        child_reuse_site();
        tp_printf(wait ? 1 : 2, "child %d\n", (int)getpid());
        tp_write_all(hs[1], "x", 1);
        close(hs[1]);
        if (wait) tp_wait_eof();
        _exit(0);
    }
    close(hs[1]);
    char c;
    ssize_t n;
    do n = read(hs[0], &c, 1);
    while (n < 0 && errno == EINTR);
    TP_CHECK(n == 1);
    close(hs[0]);
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    int status = 0;
    pid_t w;
    do w = waitpid(pid, &status, 0);
    while (w < 0 && errno == EINTR);
    TP_CHECK(w == pid);
    TP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return 0;
}

SITE int run_exec(int wait, const char* argv0) {
    pre_exec_site();
    pre_exec_touch();
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    TP_CHECK(n > 0);
    path[n] = '\0';
    char* args[] = {(char*)argv0, (char*)"--after-exec", wait ? (char*)"--wait" : NULL, NULL};
    execv(path, args);
    TP_CHECK(!"execv failed");
    return 1;
}

SITE int run_after_exec(int wait) {
    post_exec_site();
    if (wait) {
        tp_done();
        tp_wait_eof();
    }
    return 0;
}

int main(int argc, char** argv) {
    if (tp_has_arg(argc, argv, "--baseline")) return 0;
    int wait = tp_has_arg(argc, argv, "--wait");
    if (tp_has_arg(argc, argv, "--after-exec")) return run_after_exec(wait);
    if (wait) {
        tp_ready();
        if (!tp_read_line()) return 1;
    }
    if (tp_has_arg(argc, argv, "--exec")) return run_exec(wait, argv[0]);
    return run_fork(wait);
}
