/* Expected numbers of the memtop test programs.
 *
 * This header is the single source of truth: the programs in tests/progs/
 * allocate exactly these sizes, and tests/runtime/ asserts exactly these
 * numbers.  It is plain C (macros) with a C++ section holding per-site tables.
 *
 * Conventions (the memtop accounting model the tests assume):
 *  - bytes are *requested* bytes (pvalloc(4000) counts 4000, not a page);
 *  - failed allocations (NULL / EINVAL / std::bad_alloc) count nothing;
 *  - free(NULL) counts nothing; freeing an untracked pointer counts nothing;
 *  - a successful realloc(p, n) with p != NULL counts 1 free + 1 alloc, even
 *    when the block stays in place; realloc(NULL, n) counts 1 alloc;
 *  - realloc(p, 0) (glibc: frees p and returns NULL) counts 1 free, 0 allocs;
 *  - nested allocator calls inside glibc/libstdc++ (reallocarray -> realloc ->
 *    malloc, operator new -> malloc, nothrow new -> new, aligned new ->
 *    aligned_alloc, ...) count once, charged to the outermost call;
 *  - "peak" is the maximum of the outstanding requested bytes; a realloc
 *    replaces old by new atomically.  Every program frees one big block at the
 *    end (PEAK_BLOCK) while everything else is outstanding, so
 *    peak == total outstanding + PEAK_BLOCK regardless of how realloc
 *    transients are accounted.
 */
#ifndef MEMTOP_TEST_PROGS_EXPECT_H
#define MEMTOP_TEST_PROGS_EXPECT_H

/* ---------------------------------------------------------------- map_first */
/* Mapped (and every page touched) before any heap allocation: 8 MiB. */
#define MAPFIRST_KB 8192

/* ------------------------------------------------------------- sample_sites */
/* --sample tests: one block size per site (see sample_sites.c). */
#define SAMPLE_SMALL_N 65536 /* malloc(1 KiB) x 65536 = 64 MiB, every second one freed */
#define SAMPLE_SMALL_SIZE 1024
#define SAMPLE_MID_N 128 /* malloc(64 KiB) x 128 = 8 MiB, kept */
#define SAMPLE_MID_SIZE 65536
#define SAMPLE_BIG_N 4 /* malloc(1 MiB) x 4 = 4 MiB, kept */
#define SAMPLE_BIG_SIZE (1024 * 1024)
/* sample_sites --many: more live blocks than the preloaded sampler's set
 * of sampled blocks holds (256 Ki slots), so that at --sample 1 some are
 * counted as lost (sampler_set_full) instead of reported. */
#define SAMPLE_MANY_N 300000 /* malloc(48) x 300000, kept */
#define SAMPLE_MANY_SIZE 48

/* ------------------------------------------------------------------ c_sites */
/* Site functions are called in this order by run_sites() (called by main). */
#define C_LEAK_MALLOC_N 3 /* leak_malloc: 3 x malloc(1000), kept */
#define C_LEAK_MALLOC_SIZE 1000
#define C_LEAK_MALLOC_BYTES (C_LEAK_MALLOC_N * C_LEAK_MALLOC_SIZE)

#define C_LEAK_CALLOC_NMEMB 10 /* leak_calloc: calloc(10, 100), kept */
#define C_LEAK_CALLOC_SIZE 100
#define C_LEAK_CALLOC_BYTES (C_LEAK_CALLOC_NMEMB * C_LEAK_CALLOC_SIZE)

#define C_TEMP_N 1000 /* temp_malloc: 1000 x (malloc(64); free) */
#define C_TEMP_SIZE 64

#define C_GROW_SIZE1 100 /* realloc_grow: malloc(100) -> realloc 200 -> realloc 5000, kept */
#define C_GROW_SIZE2 200
#define C_GROW_SIZE3 5000
#define C_GROW_BYTES C_GROW_SIZE3

#define C_SHRINK_SIZE1 4096 /* realloc_shrink: malloc(4096) -> realloc 10, kept */
#define C_SHRINK_SIZE2 10
#define C_SHRINK_BYTES C_SHRINK_SIZE2

#define C_RNULL_SIZE 300 /* realloc_null: realloc(NULL, 300), kept */

#define C_RZERO_SIZE 50 /* realloc_zero: malloc(50); realloc(p, 0) -> freed */

#define C_RFAIL_SIZE 77 /* realloc_fail_origin: malloc(77), kept;               */
                        /* realloc_fail: realloc(p, SIZE_MAX/2) fails, p stays  */
                        /* charged to realloc_fail_origin                       */

/* malloc_fail: malloc(SIZE_MAX/2) -> NULL */

#define C_PM_ALIGN 64 /* posix_memalign_ok: posix_memalign(&p, 64, 256), kept */
#define C_PM_SIZE 256
/* posix_memalign_fail: posix_memalign(&p, 3, 100) -> EINVAL */
#define C_PM_FAIL_ALIGN 3
#define C_PM_FAIL_SIZE 100

#define C_ALIGNED_ALIGN 64 /* aligned_alloc_site: aligned_alloc(64, 640), kept */
#define C_ALIGNED_SIZE 640

#define C_MEMALIGN_ALIGN 32 /* memalign_site: memalign(32, 320), kept */
#define C_MEMALIGN_SIZE 320

#define C_VALLOC_SIZE 123 /* valloc_site: valloc(123), kept */

#define C_PVALLOC_SIZE 4000 /* pvalloc_site: pvalloc(4000), kept; counts 4000 */

#define C_RARRAY_NMEMB 11 /* reallocarray_site: reallocarray(NULL, 11, 30), kept */
#define C_RARRAY_SIZE 30
#define C_RARRAY_BYTES (C_RARRAY_NMEMB * C_RARRAY_SIZE)

/* free_null_site: 3 x free(NULL) */
#define C_FREE_NULL_N 3

#define C_PEAK_BLOCK 100000 /* peak_site (last): malloc(100000); free */

#define C_TOTAL_BYTES                                                                                          \
    (C_LEAK_MALLOC_BYTES + C_LEAK_CALLOC_BYTES + C_GROW_BYTES + C_SHRINK_BYTES + C_RNULL_SIZE + C_RFAIL_SIZE + \
     C_PM_SIZE + C_ALIGNED_SIZE + C_MEMALIGN_SIZE + C_VALLOC_SIZE + C_PVALLOC_SIZE + C_RARRAY_BYTES)
#define C_TOTAL_ALLOCS (C_LEAK_MALLOC_N + 11) /* outstanding blocks */
#define C_PEAK_BYTES (C_TOTAL_BYTES + C_PEAK_BLOCK)
/* successful allocations: leak_malloc 3, calloc 1, temp N, grow 3, shrink 2,
 * realloc_null 1, realloc_zero 1, rfail origin 1, posix_memalign 1,
 * aligned_alloc 1, memalign 1, valloc 1, pvalloc 1, reallocarray 1, peak 1 */
#define C_ALLOCS_TOTAL (C_LEAK_MALLOC_N + 1 + C_TEMP_N + 3 + 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1)
/* frees of tracked pointers: temp N, grow 2 (two reallocs), shrink 1,
 * realloc_zero 1, peak 1 */
#define C_FREES_TOTAL (C_TEMP_N + 2 + 1 + 1 + 1)

/* ---------------------------------------------------------------- cpp_sites */
/* All site functions are extern "C" so their names are unmangled. */
#define CPP_OBJ_SIZE 136 /* sizeof(Obj) */
#define CPP_NEW_N 2      /* new_site: 2 x new Obj, kept */
#define CPP_NEW_BYTES (CPP_NEW_N * CPP_OBJ_SIZE)
#define CPP_NEW_ARRAY_SIZE 1500 /* new_array_site: new char[1500], kept */
#define CPP_NOTHROW_SIZE 700    /* nothrow_new_site: new (std::nothrow) char[700], kept */
#define CPP_ALIGNED_SIZE 192    /* aligned_new_site: new AlignedObj (alignas(64), 192 B), kept */
#define CPP_ALIGNED_ALIGN 64
/* delete_site: new Obj; delete -> nothing outstanding */
#define CPP_VEC_CAP 1234 /* vector_site: std::vector<int>::reserve(1234), kept */
#define CPP_VEC_BYTES (CPP_VEC_CAP * 4)
/* new_fail_site: new char[SIZE_MAX/4] -> std::bad_alloc, caught; runs between
 * new_site and new_array_site so later allocations must still be exact */
#define CPP_PEAK_BLOCK 200000 /* peak_site (last): new char[200000]; delete[] */

#define CPP_TOTAL_BYTES (CPP_NEW_BYTES + CPP_NEW_ARRAY_SIZE + CPP_NOTHROW_SIZE + CPP_ALIGNED_SIZE + CPP_VEC_BYTES)
#define CPP_TOTAL_ALLOCS (CPP_NEW_N + 4)
#define CPP_PEAK_BYTES (CPP_TOTAL_BYTES + CPP_PEAK_BLOCK)
/* program's own successful allocations / frees: new 2, array 1, nothrow 1,
 * aligned 1, delete_site 1, vector 1, peak 1 */
#define CPP_ALLOCS_TOTAL (CPP_NEW_N + 6)
#define CPP_FREES_TOTAL 2
/* libstdc++ (GCC 12) itself: throwing std::bad_alloc allocates the exception
 * object with malloc in __cxa_allocate_exception and frees it after the catch.
 * Not part of any site; balanced (1 alloc + 1 free). */
#define CPP_EH_ALLOCS 1

/* ------------------------------------------------------------------ threads */
/* threads [--wait] [N [K [M]]]: N threads, each does K x (malloc(32); free)
 * in thread_temp(), then waits on a barrier, then keeps M x malloc(48) in
 * thread_keep().  Threads run on user-supplied stacks, so glibc's per-thread
 * DTV (calloc'ed by pthread_create) is freed again by pthread_join. */
#define THR_N 8
#define THR_K 1000
#define THR_M 10
#define THR_TEMP_SIZE 32
#define THR_KEEP_SIZE 48
#define THR_TOTAL_BYTES (THR_N * THR_M * THR_KEEP_SIZE)
#define THR_TOTAL_ALLOCS (THR_N * THR_M)
#define THR_ALLOCS_TOTAL (THR_N * (THR_K + THR_M))
#define THR_FREES_TOTAL (THR_N * THR_K)
/* When the whole life of the process is traced (memtop -- CMD), glibc 2.36's
 * pthread_create adds 1 calloc per thread (the DTV, ~300 bytes, caller in
 * ld.so), freed again by pthread_join.  Their timing relative to the kept
 * blocks is not deterministic, so the peak is only bounded then. */
#define THR_LIBC_ALLOCS_PER_THREAD 1
#define THR_LIBC_MAX_BYTES_PER_THREAD 1024

/* ------------------------------------------------------------------- forker */
/* forker [--wait]: parent_site keeps FORK_PARENT_N x FORK_PARENT_SIZE, then
 * fork(); the child keeps FORK_CHILD_SIZE at child_site, frees one inherited
 * parent block (must not change any count) and keeps FORK_PARENT_SIZE again at
 * child_reuse_site (likely the very address it just freed); it prints
 * "child <pid>\n".  The parent waits for the child's handshake, prints
 * "done\n" (--wait), and both exit when stdin closes; the parent reaps the
 * child. */
#define FORK_PARENT_N 4
#define FORK_PARENT_SIZE 2500
#define FORK_PARENT_BYTES (FORK_PARENT_N * FORK_PARENT_SIZE)
#define FORK_CHILD_SIZE 3300
#define FORK_CHILD_BYTES (FORK_CHILD_SIZE + FORK_PARENT_SIZE)
#define FORK_CHILD_ALLOCS 2

/* forker --exec [--wait]: pre_exec_site keeps EXEC_PRE_N x EXEC_PRE_SIZE,
 * then the process execs itself with --after-exec; post_exec_site keeps
 * EXEC_POST_SIZE.  After the exec only EXEC_POST_SIZE is outstanding. */
#define EXEC_PRE_N 2
#define EXEC_PRE_SIZE 3000
#define EXEC_POST_SIZE 4321
/* forker --exec also maps and touches EXEC_PRE_TOUCH_MB of anonymous memory
 * before the exec (pre_exec_touch): that image's growth and mapping, none
 * of the new image's. */
#define EXEC_PRE_TOUCH_MB 32

/* ---------------------------------------------------------------- deep_sites */
/* One allocation per site, all kept (deep_sites.cpp, deep_lib.c). */
#define DEEP_CHAIN_SIZE 1111  /* main -> run_deep_sites -> deep_level1 -> 2 -> 3 -> malloc */
#define DEEP_NEW_SIZE 2222    /* deep_inline_outer -> (inlined) deep::make_node -> new */
#define DEEP_LIB_SIZE 3333    /* deep_via_lib -> deep_lib_entry -> deep_lib_inner (libdeep_lib.so) */
#define DEEP_THREAD_SIZE 4444 /* thread: deep_thread_main -> deep_thread_site -> malloc */

/* ----------------------------------------------------------------- jit_sites */
/* main -> jit_call_site -> jit_stub_alloc (machine code in anonymous memory,
 * named only by /tmp/perf-PID.map) -> malloc(JIT_SIZE), kept. */
#define JIT_SIZE 5555
#define JIT_STUB_NAME "jit_stub_alloc"
/* Offset in the stub of the return address of its call to malloc: what
 * frames[0].offset must be (push 1 + mov 3 + movabs 10 + call 2 bytes). */
#define JIT_STUB_RET_OFFSET 16
/* jit_sites --perf-map=random|shadow|absurd: a hostile perf map in place of
 * the good one, and this exit status (memtop -- CMD passes it through). */
#define JIT_HOSTILE_EXIT 23
#define JIT_RANDOM_MAP_BYTES (50 << 20)
/* --perf-map=absurd: lines memtop must skip as absurd (every one of them
 * would cover the stub), and lines that overlap earlier ones (none covers
 * the stub), of JIT_ABSURD_USED lines that parse and are kept. */
#define JIT_ABSURD_LINES 5
#define JIT_OVERLAPPING_LINES 2
#define JIT_ABSURD_USED 3

#ifdef __cplusplus
namespace expect {

struct Site {
    const char* function; /* frames[0].function of the stacks charged to it */
    long long bytes;      /* outstanding bytes at the end */
    long long allocs;     /* outstanding allocations at the end */
    bool totals_equal;    /* every allocation ever made there is still
                             outstanding, so alloc(s|_bytes)_total == allocs/bytes */
};

inline constexpr Site c_sites[] = {
    {"leak_malloc", C_LEAK_MALLOC_BYTES, C_LEAK_MALLOC_N, true},
    {"leak_calloc", C_LEAK_CALLOC_BYTES, 1, true},
    {"temp_malloc", 0, 0, false},
    {"realloc_grow", C_GROW_BYTES, 1, false},
    {"realloc_shrink", C_SHRINK_BYTES, 1, false},
    {"realloc_null", C_RNULL_SIZE, 1, true},
    {"realloc_zero", 0, 0, false},
    {"realloc_fail_origin", C_RFAIL_SIZE, 1, true},
    {"realloc_fail", 0, 0, false},
    {"malloc_fail", 0, 0, false},
    {"posix_memalign_ok", C_PM_SIZE, 1, true},
    {"posix_memalign_fail", 0, 0, false},
    {"aligned_alloc_site", C_ALIGNED_SIZE, 1, true},
    {"memalign_site", C_MEMALIGN_SIZE, 1, true},
    {"valloc_site", C_VALLOC_SIZE, 1, true},
    {"pvalloc_site", C_PVALLOC_SIZE, 1, true},
    {"reallocarray_site", C_RARRAY_BYTES, 1, true},
    {"free_null_site", 0, 0, false},
    {"peak_site", 0, 0, false},
};

/* vector_site is not listed: its operator new is called from inlined or
 * out-of-line libstdc++ template code, so it is matched by "any frame". */
inline constexpr Site cpp_sites[] = {
    {"new_site", CPP_NEW_BYTES, CPP_NEW_N, true},
    {"new_fail_site", 0, 0, false},
    {"new_array_site", CPP_NEW_ARRAY_SIZE, 1, true},
    {"nothrow_new_site", CPP_NOTHROW_SIZE, 1, true},
    {"aligned_new_site", CPP_ALIGNED_SIZE, 1, true},
    {"delete_site", 0, 0, false},
    {"peak_site", 0, 0, false},
};

}  // namespace expect
#endif

/* rss_grow.c: fresh anonymous memory touched, then unmapped. */
#define RSS_GROW_MB 64
#define RSS_GROW_HEAP_MB 16 /* rss_grow --three-ways: a malloc'd block touched by touch_heap */
#define RSS_GROW_STACK_MB 4 /* and a thread's stack array touched by touch_stack */

/* ---------------------------------------------------------------- map_sites */
/* Anonymous mappings outside malloc, per function (KiB still mapped after
 * "mapped"). map_keep and grow_brk give theirs back at "unmap". */
/* big_malloc: malloc(BIG_MALLOC_SIZE) in big_site, kept until EOF; glibc
 * maps it (4 MiB is far above its mmap threshold). */
#define BIG_MALLOC_SIZE (4 << 20)
#define BIG_MALLOC_FIRST 16 /* first_site: malloc(16) before it, kept until EOF */

#define MAP_KEEP_KB 3072   /* map_keep: mmap 3 MiB, kept until "unmap" */
#define MAP_TRIM_KB 3072   /* map_trim: mmap 5 MiB, head and tail 1 MiB unmapped */
#define MAP_GONE_KB 0      /* map_gone: mmap 2 MiB, all unmapped */
#define MAP_GROW_KB 4096   /* map_grow: mmap 1 MiB, mremap to 4 MiB (charged to mremap's stack) */
#define MAP_RESERVE_KB 0   /* map_reserve: 8 MiB PROT_NONE: address space, not memory */
#define MAP_COMMIT_KB 1024 /* map_commit: 4 MiB PROT_NONE, then 1 MiB of it mapped MAP_FIXED read-write */
#define MAP_FIXED_KB 2048  /* map_fixed: mmap 2 MiB, its upper half replaced by MAP_FIXED: 1 + 1 MiB */
#define MAP_BRK_KB 256     /* grow_brk: sbrk(256 KiB), given back at "unmap" */

/* ------------------------------------------------------------- delta_sites */
/* /debug/pprof/heap?seconds=N: before the window ("before"), held_site keeps
 * one block and freed_site another; in the window ("during"), window_site
 * keeps DELTA_WINDOW_N blocks, churn_site allocates and frees DELTA_CHURN_N,
 * and freed_site's block is freed. The window's delta per site, in pprof's
 * order (alloc_objects alloc_space inuse_objects inuse_space):
 *   window_site: N_W, N_W*S_W, N_W, N_W*S_W;  churn_site: N_C, N_C*S_C, 0, 0;
 *   freed_site: 0, 0, -1, -DELTA_FREED_SIZE;  held_site: nothing (unchanged). */
#define DELTA_HELD_SIZE 7000
#define DELTA_FREED_SIZE 3000
#define DELTA_WINDOW_N 4
#define DELTA_WINDOW_SIZE 2500
#define DELTA_CHURN_N 10
#define DELTA_CHURN_SIZE 128

#endif
