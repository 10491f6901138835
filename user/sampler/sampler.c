/*
 * libmemtop_sampler.so: the in-process heap sampler that `memtop --sample N
 * -- CMD` preloads into CMD (docs/hot-path.md, "In-process sampling").
 *
 * It interposes the malloc family and forwards every call to the next
 * definition (glibc's, or an allocator preloaded after it). Each thread
 * keeps a countdown of bytes to its next sample, drawn from an exponential
 * with mean N (MEMTOP_SAMPLE_BYTES) by the very code the BPF sampler runs
 * (bpf/sample_math.h), so a call of s bytes is sampled with probability
 * 1 - exp(-s/N) exactly as under BPF sampling. Only a sampled allocation
 * reaches memtop: it is reported to memtop_sampled_alloc(), and its free to
 * memtop_sampled_free(), two empty functions on which memtop puts its
 * uprobes. An unsampled call costs a subtraction and no trap.
 *
 * A free must know whether its block was sampled without a trap: sampled
 * addresses are kept in a lock-free hash set (buckets of one cache line,
 * a second-choice bucket when the first is full), so the free of an
 * unsampled block costs one read of one cache line, and nothing at all
 * while no sampled block is live.
 *
 * Rules that keep the traced program safe: no allocation in the hooks (the
 * set lives in one mmap made at first use), no lock (so fork and signals
 * cannot deadlock on one), a per-thread guard so that a call made from
 * inside a hook (dlsym at start-up) is forwarded unsampled, and a static
 * arena for what dlsym allocates before the next malloc is known.
 *
 * Built twice: libmemtop_sampler.so (--sample N: the native heap and, with
 * MEMTOP_SAMPLE_PYTHON=1, CPython's object allocator) and, with
 * MEMTOP_PYTHON_ONLY, libmemtop_pysampler.so (--python-objects -- CMD by
 * default): CPython's object allocator only, no malloc family at all, so
 * the native heap stays exact in memtop's probes on the unmodified
 * allocator (section "CPython's object allocator").
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/types.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sample_math.h"

/* memtop_sampled_py_free's messages: ptr values no object has (bpf/memtop.h). */
#define MEMTOP_PY_MSG_RAW 1
#define MEMTOP_PY_MSG_HOOKS_LOST 2

#ifdef MEMTOP_PYTHON_ONLY
#define NATIVE_ONLY __attribute__((unused))
#else
#define NATIVE_ONLY
#endif

#define EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The probe points. Written in assembly so that no compiler removes or
 * inlines them: `push %rbp` first (an instruction the kernel emulates, so the
 * uprobe costs one trap), and the arguments stay in their registers:
 *   memtop_sampled_alloc(ptr, size, ret, sp, fp, dropped): ret, sp and fp
 *     are the hook's caller's return address, stack pointer and frame
 *     pointer at the hook's entry, so memtop walks the stack as if it had
 *     trapped at that malloc: the sampler's own frames are not in it.
 *   memtop_sampled_free(ptr, temporary, dropped): temporary = the block is
 *     the last one this thread allocated (memtop's "temporary" allocations);
 *     ptr NULL: only `dropped` to say (at exit).
 *   dropped: sampled allocations not reported since the last call (below).
 * The _local aliases are hidden: the calls are direct, never through the PLT. */
__asm__(
    ".text\n"
    ".globl memtop_sampled_alloc\n"
    ".type memtop_sampled_alloc,@function\n"
    ".globl memtop_sampled_alloc_local\n"
    ".hidden memtop_sampled_alloc_local\n"
    ".p2align 4\n"
    "memtop_sampled_alloc:\n"
    "memtop_sampled_alloc_local:\n"
    "\tpush %rbp\n"
    "\tpop %rbp\n"
    "\tret\n"
    ".size memtop_sampled_alloc, .-memtop_sampled_alloc\n"
    ".globl memtop_sampled_free\n"
    ".type memtop_sampled_free,@function\n"
    ".globl memtop_sampled_free_local\n"
    ".hidden memtop_sampled_free_local\n"
    ".p2align 4\n"
    "memtop_sampled_free:\n"
    "memtop_sampled_free_local:\n"
    "\tpush %rbp\n"
    "\tpop %rbp\n"
    "\tret\n"
    ".size memtop_sampled_free, .-memtop_sampled_free\n"
    ".globl memtop_sampled_py_alloc\n"
    ".type memtop_sampled_py_alloc,@function\n"
    ".globl memtop_sampled_py_alloc_local\n"
    ".hidden memtop_sampled_py_alloc_local\n"
    ".p2align 4\n"
    "memtop_sampled_py_alloc:\n"
    "memtop_sampled_py_alloc_local:\n"
    "\tpush %rbp\n"
    "\tpop %rbp\n"
    "\tret\n"
    ".size memtop_sampled_py_alloc, .-memtop_sampled_py_alloc\n"
    ".globl memtop_sampled_py_free\n"
    ".type memtop_sampled_py_free,@function\n"
    ".globl memtop_sampled_py_free_local\n"
    ".hidden memtop_sampled_py_free_local\n"
    ".p2align 4\n"
    "memtop_sampled_py_free:\n"
    "memtop_sampled_py_free_local:\n"
    "\tpush %rbp\n"
    "\tpop %rbp\n"
    "\tret\n"
    ".size memtop_sampled_py_free, .-memtop_sampled_py_free\n");
void memtop_sampled_alloc_local(void* ptr, size_t size, uintptr_t ret, uintptr_t sp, uintptr_t fp, uint64_t dropped);
void memtop_sampled_free_local(void* ptr, int temporary, uint64_t dropped);
/* CPython's object allocator (MEMTOP_SAMPLE_PYTHON=1, below): the same two
 * points for the Python domain, memtop_sampled_py_free(ptr, dropped). */
void memtop_sampled_py_alloc_local(void* ptr, size_t size, uintptr_t ret, uintptr_t sp, uintptr_t fp, uint64_t dropped);
void memtop_sampled_py_free_local(void* ptr, uint64_t dropped);

/* Sampled allocations the set of sampled blocks had no room for: they are
 * not reported (memtop would never see them freed), but never silently:
 * the count goes to memtop with the next report of either kind (the last
 * argument), and at exit (a free of NULL), and memtop shows it under
 * "lost" (sampler_set_full). */
static uint64_t dropped;

static inline uint64_t take_dropped(void) {
    if (__builtin_expect(__atomic_load_n(&dropped, __ATOMIC_RELAXED) == 0, 1)) return 0;
    return __atomic_exchange_n(&dropped, 0, __ATOMIC_RELAXED);
}

/* The hook's caller as the hook saw it at entry: the hooks are built with
 * frame pointers (and no shrink-wrapping), so the frame address is entry sp
 * - 8, holding the caller's rbp, with the return address above it. */
#define REPORT_ALLOC(p, size)                                                                          \
    do {                                                                                               \
        uintptr_t* fa_ = (uintptr_t*)__builtin_frame_address(0);                                       \
        memtop_sampled_alloc_local((p), (size), fa_[1], (uintptr_t)(fa_ + 1), fa_[0], take_dropped()); \
    } while (0)

/* --- the next definitions ------------------------------------------------ */

static void* (*next_malloc)(size_t)NATIVE_ONLY;
static void* (*next_calloc)(size_t, size_t)NATIVE_ONLY;
static void* (*next_realloc)(void*, size_t)NATIVE_ONLY;
static void (*next_free)(void*) NATIVE_ONLY;
static void* (*next_memalign)(size_t, size_t)NATIVE_ONLY;
static int (*next_posix_memalign)(void**, size_t, size_t) NATIVE_ONLY;
static void* (*next_aligned_alloc)(size_t, size_t)NATIVE_ONLY;
static void* (*next_valloc)(size_t)NATIVE_ONLY;
static void* (*next_pvalloc)(size_t)NATIVE_ONLY;

static int resolved;          /* the next_* pointers are set */
static uint64_t mean_bytes;   /* MEMTOP_SAMPLE_BYTES; 0: forward only */
static __u32 log2_table[257]; /* bpf/sample.h's log2_frac_q24 */

static __thread int t_busy; /* inside a hook: nested calls are forwarded */
/* Bytes to this thread's next sample, of the native heap and of the Python
 * domain (each its own countdown: one stream of draws each). */
struct countdown {
    int64_t left;
    int started; /* left holds a draw */
};
static __thread struct countdown t_native NATIVE_ONLY, t_python;
static __thread uint64_t t_rng;               /* xorshift64* state, 0: not seeded */
static __thread uintptr_t t_last NATIVE_ONLY; /* the last block this thread allocated */

/* What dlsym allocates while the next_* are being looked up. */
static char boot_arena[64 * 1024] __attribute__((aligned(64)));
static size_t boot_used;
static int in_resolve;

NATIVE_ONLY static int in_boot_arena(const void* p) {
    return (const char*)p >= boot_arena && (const char*)p < boot_arena + sizeof boot_arena;
}

NATIVE_ONLY static void* boot_alloc(size_t size, size_t align) {
    if (align < 16) align = 16;
    size_t at = __atomic_load_n(&boot_used, __ATOMIC_RELAXED), start;
    do {
        start = (at + align - 1) & ~(align - 1);
        if (start + size > sizeof boot_arena || start + size < start) return NULL;
    } while (!__atomic_compare_exchange_n(&boot_used, &at, start + size, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return boot_arena + start; /* zeroed: static storage never handed out twice */
}

static uint64_t parse_bytes(const char* s) {
    uint64_t v = 0;
    if (!s) return 0;
    for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + (uint64_t)(*s - '0');
    /* bpf/sample.h's limit: T * 2^29 within 64 bits. */
    return v < (1ULL << 32) ? v : 0;
}

static void resolve(void) {
    if (__atomic_load_n(&resolved, __ATOMIC_ACQUIRE)) return;
    in_resolve = 1;
#ifndef MEMTOP_PYTHON_ONLY
    next_malloc = dlsym(RTLD_NEXT, "malloc");
    next_calloc = dlsym(RTLD_NEXT, "calloc");
    next_realloc = dlsym(RTLD_NEXT, "realloc");
    next_free = dlsym(RTLD_NEXT, "free");
    next_memalign = dlsym(RTLD_NEXT, "memalign");
    next_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    next_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    next_valloc = dlsym(RTLD_NEXT, "valloc");
    next_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
#endif
    for (int i = 0; i < 257; i++) log2_table[i] = (__u32)lround(log2(1.0 + i / 256.0) * 16777216.0);
    mean_bytes = parse_bytes(getenv("MEMTOP_SAMPLE_BYTES"));
    in_resolve = 0;
    __atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
}

static void python_install(void);

__attribute__((constructor)) static void sampler_init(void) {
    resolve();
    python_install();
}

/* --- the countdown ----------------------------------------------------- */

static uint32_t next_random(void) {
    if (UNLIKELY(!t_rng)) {
        /* Seeded per thread from the clock and the thread's own address. */
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        uint64_t z = (((uint64_t)hi << 32) | lo) ^ (uintptr_t)&t_rng;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL; /* splitmix64 finaliser */
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        t_rng = (z ^ (z >> 31)) | 1;
    }
    t_rng ^= t_rng >> 12;
    t_rng ^= t_rng << 25;
    t_rng ^= t_rng >> 27;
    return (uint32_t)((t_rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static int64_t draw_countdown(void) {
    return (int64_t)((mean_bytes * exp_q24_of(next_random(), log2_table)) >> 24);
}

/* Whether an allocation of `size` bytes is sampled: bpf/sample.h's
 * sample_call(). The common case is one subtraction and one compare. */
static inline int sample_call(struct countdown* c, size_t size) {
    if (!mean_bytes || !size) return 0;
    int64_t s = size > (1ULL << 62) ? (1LL << 62) : (int64_t)size;
    if (LIKELY((c->left -= s) > 0)) return 0;
    if (UNLIKELY(!c->started)) {
        /* First call of this thread: its first draw, then this call. */
        c->started = 1;
        c->left = draw_countdown() - s;
        if (c->left > 0) return 0;
    }
    c->left = draw_countdown();
    return 1;
}

/* --- the set of sampled blocks ---------------------------------------- */

#define SLOTS 4 /* keys and sizes of one bucket: one cache line */

/* The native set: 2^16 buckets, 256 Ki slots in 4 MiB of address space,
 * touched as used: a sampled block touches one line. Full beyond roughly
 * 160 Ki live sampled blocks (then buckets overflow their second choice and
 * such blocks go unreported, and counted: `dropped`): 80 GiB of live heap at
 * --sample 524288, 10 GiB at 65536; at --sample 1, 160 Ki live blocks of any
 * size. The Python set: 2^18 buckets (1 Mi slots, 16 MiB of address space,
 * touched as used): a CPython's live objects alone are ~50 Ki after start-up,
 * and at --sample 1 every one of them is in the set. */
struct bucket {
    uintptr_t key[SLOTS];
    uint64_t size[SLOTS];
} __attribute__((aligned(64)));

/* One set per domain: the native heap's, and the Python domain's (an
 * unsampled Python free looks in its own set only, and only while it holds
 * a block). Mapped at its first sampled block: 2^bits buckets, then as many
 * `spilled` counts (keys whose first bucket is that one, in their second). */
struct set_ref {
    struct bucket* b;
    uint32_t bits;
    uint64_t live; /* sampled blocks in the set */
};
static struct set_ref native_set NATIVE_ONLY = {NULL, 16, 0}, python_set = {NULL, 18, 0};

static inline size_t set_bytes(const struct set_ref* r) {
    return ((size_t)1 << r->bits) * (sizeof(struct bucket) + sizeof(uint32_t));
}

static inline uint32_t* spilled_of(const struct set_ref* r, struct bucket* b) {
    return (uint32_t*)(b + ((size_t)1 << r->bits));
}

static struct bucket* the_set(struct set_ref* r) {
    struct bucket* s = __atomic_load_n(&r->b, __ATOMIC_ACQUIRE);
    if (LIKELY(s != NULL)) return s;
    /* Touched pages only: a few KiB for a few sampled blocks. */
    void* m = mmap(NULL, set_bytes(r), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return NULL;
    struct bucket* expected = NULL;
    if (!__atomic_compare_exchange_n(&r->b, &expected, (struct bucket*)m, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        munmap(m, set_bytes(r));
        return expected;
    }
    return (struct bucket*)m;
}

static inline uint32_t hash1(const struct set_ref* r, uintptr_t p) {
    return (uint32_t)(((p >> 4) * 0x9E3779B97F4A7C15ULL) >> (64 - r->bits));
}

static inline uint32_t hash2(const struct set_ref* r, uintptr_t p) {
    return (uint32_t)(((p >> 4) * 0xC2B2AE3D27D4EB4FULL) >> (64 - r->bits));
}

static int bucket_put(struct bucket* s, uint32_t b, uintptr_t p, uint64_t size) {
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t zero = 0;
        if (__atomic_load_n(&s[b].key[i], __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&s[b].key[i], &zero, p, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            s[b].size[i] = size;
            return 1;
        }
    }
    return 0;
}

/* 1 when `p` is in the set now; 0 when both its buckets are full (the
 * allocation is then not reported: it would be a block memtop could never
 * see freed). */
static int set_add(struct set_ref* r, uintptr_t p, uint64_t size) {
    struct bucket* s = the_set(r);
    if (!s) {
        __atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
        return 0;
    }
    uint32_t b1 = hash1(r, p);
    uint32_t* spilled = spilled_of(r, s);
    if (!bucket_put(s, b1, p, size)) {
        __atomic_fetch_add(&spilled[b1], 1, __ATOMIC_RELAXED);
        if (!bucket_put(s, hash2(r, p), p, size)) {
            __atomic_fetch_sub(&spilled[b1], 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&dropped, 1, __ATOMIC_RELAXED);
            return 0;
        }
    }
    __atomic_fetch_add(&r->live, 1, __ATOMIC_RELAXED);
    return 1;
}

static int bucket_take(struct bucket* s, uint32_t b, uintptr_t p, uint64_t* size) {
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t k = p;
        if (__atomic_load_n(&s[b].key[i], __ATOMIC_RELAXED) == p &&
            __atomic_compare_exchange_n(&s[b].key[i], &k, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *size = s[b].size[i];
            return 1;
        }
    }
    return 0;
}

/* Takes `p` out of the set; 1 if it was sampled (its size in *size). Only
 * the block's owner frees it, so no other thread adds or takes this key
 * meanwhile. */
static inline int set_take(struct set_ref* r, uintptr_t p, uint64_t* size) {
    if (LIKELY(__atomic_load_n(&r->live, __ATOMIC_RELAXED) == 0)) return 0;
    struct bucket* s = __atomic_load_n(&r->b, __ATOMIC_ACQUIRE);
    if (!s) return 0;
    uint32_t b1 = hash1(r, p);
    uint32_t* spilled = spilled_of(r, s);
    int found = bucket_take(s, b1, p, size);
    if (!found && __atomic_load_n(&spilled[b1], __ATOMIC_RELAXED)) {
        found = bucket_take(s, hash2(r, p), p, size);
        if (found) __atomic_fetch_sub(&spilled[b1], 1, __ATOMIC_RELAXED);
    }
    if (found) __atomic_fetch_sub(&r->live, 1, __ATOMIC_RELAXED);
    return found;
}

/* --- the hooks --------------------------------------------------------- */

#ifndef MEMTOP_PYTHON_ONLY
/* A fresh block of `size` bytes at `p`: 1 when it is sampled and goes to
 * memtop (the caller then reports it: REPORT_ALLOC reads the hook's frame). */
static inline int after_alloc(void* p, size_t size) {
    if (!p) return 0;
    t_last = (uintptr_t)p;
    return sample_call(&t_native, size) && set_add(&native_set, (uintptr_t)p, size);
}

/* Before the block at `p` goes back to the allocator (so that memtop forgets
 * it before another thread can get its address). */
static inline void before_free(void* p) {
    uint64_t size;
    if (p && UNLIKELY(set_take(&native_set, (uintptr_t)p, &size))) {
        int temporary = t_last == (uintptr_t)p;
        if (temporary) t_last = 0;
        memtop_sampled_free_local(p, temporary, take_dropped());
    }
}

#define ENTER()                             \
    do {                                    \
        if (UNLIKELY(!resolved)) resolve(); \
    } while (0)

EXPORT void* malloc(size_t size) {
    if (UNLIKELY(in_resolve)) return boot_alloc(size, 16);
    ENTER();
    if (UNLIKELY(t_busy)) return next_malloc(size);
    t_busy = 1;
    void* p = next_malloc(size);
    if (UNLIKELY(after_alloc(p, size))) REPORT_ALLOC(p, size);
    t_busy = 0;
    return p;
}

EXPORT void* calloc(size_t n, size_t size) {
    if (UNLIKELY(in_resolve)) {
        size_t bytes;
        return __builtin_mul_overflow(n, size, &bytes) ? NULL : boot_alloc(bytes, 16);
    }
    ENTER();
    if (UNLIKELY(t_busy)) return next_calloc(n, size);
    t_busy = 1;
    void* p = next_calloc(n, size);
    size_t bytes = n * size; /* p is NULL on overflow */
    if (UNLIKELY(after_alloc(p, bytes))) REPORT_ALLOC(p, bytes);
    t_busy = 0;
    return p;
}

EXPORT void free(void* p) {
    if (UNLIKELY(!p || in_boot_arena(p))) return;
    ENTER();
    if (UNLIKELY(t_busy)) {
        next_free(p);
        return;
    }
    t_busy = 1;
    before_free(p);
    next_free(p);
    t_busy = 0;
}

/* realloc: the old block, if sampled, is freed to memtop first (realloc may
 * hand its address to another thread at once); the new one is a call of
 * `size` bytes, sampled like any other. A failed realloc leaves the old
 * block live: it is reported again. */
static void* realloc_hooked(void* p, size_t size, uintptr_t* fa) {
    uint64_t old_size = 0;
    int old_sampled = p && set_take(&native_set, (uintptr_t)p, &old_size);
    if (old_sampled) {
        int temporary = t_last == (uintptr_t)p;
        if (temporary) t_last = 0;
        memtop_sampled_free_local(p, temporary, take_dropped());
    }
    void* q = next_realloc(p, size);
    if (!q) {
        if (old_sampled && size && set_add(&native_set, (uintptr_t)p, old_size))
            memtop_sampled_alloc_local(p, old_size, fa[1], (uintptr_t)(fa + 1), fa[0], take_dropped());
        return q;
    }
    if (after_alloc(q, size)) memtop_sampled_alloc_local(q, size, fa[1], (uintptr_t)(fa + 1), fa[0], take_dropped());
    return q;
}

EXPORT void* realloc(void* p, size_t size) {
    if (UNLIKELY(in_resolve || in_boot_arena(p))) {
        if (in_resolve) return boot_alloc(size, 16);
        /* A block of dlsym's: moved into the real heap. */
        void* q = malloc(size);
        if (q)
            memcpy(q, p,
                   size < (size_t)(boot_arena + sizeof boot_arena - (char*)p)
                       ? size
                       : (size_t)(boot_arena + sizeof boot_arena - (char*)p));
        return q;
    }
    ENTER();
    if (UNLIKELY(t_busy)) return next_realloc(p, size);
    t_busy = 1;
    void* q = realloc_hooked(p, size, (uintptr_t*)__builtin_frame_address(0));
    t_busy = 0;
    return q;
}

EXPORT void* reallocarray(void* p, size_t n, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    if (UNLIKELY(in_resolve || in_boot_arena(p))) return realloc(p, bytes);
    ENTER();
    if (UNLIKELY(t_busy)) return next_realloc(p, bytes);
    t_busy = 1;
    void* q = realloc_hooked(p, bytes, (uintptr_t*)__builtin_frame_address(0));
    t_busy = 0;
    return q;
}

EXPORT void* memalign(size_t align, size_t size) {
    if (UNLIKELY(in_resolve)) return boot_alloc(size, align);
    ENTER();
    if (UNLIKELY(t_busy)) return next_memalign(align, size);
    t_busy = 1;
    void* p = next_memalign(align, size);
    if (UNLIKELY(after_alloc(p, size))) REPORT_ALLOC(p, size);
    t_busy = 0;
    return p;
}

EXPORT void* aligned_alloc(size_t align, size_t size) {
    if (UNLIKELY(in_resolve)) return boot_alloc(size, align);
    ENTER();
    if (UNLIKELY(t_busy)) return next_aligned_alloc(align, size);
    t_busy = 1;
    void* p = next_aligned_alloc(align, size);
    if (UNLIKELY(after_alloc(p, size))) REPORT_ALLOC(p, size);
    t_busy = 0;
    return p;
}

EXPORT int posix_memalign(void** out, size_t align, size_t size) {
    if (UNLIKELY(in_resolve)) {
        void* p = boot_alloc(size, align);
        if (!p) return ENOMEM;
        *out = p;
        return 0;
    }
    ENTER();
    if (UNLIKELY(t_busy)) return next_posix_memalign(out, align, size);
    t_busy = 1;
    int err = next_posix_memalign(out, align, size);
    if (UNLIKELY(!err && after_alloc(*out, size))) REPORT_ALLOC(*out, size);
    t_busy = 0;
    return err;
}

EXPORT void* valloc(size_t size) {
    if (UNLIKELY(in_resolve)) return boot_alloc(size, 4096);
    ENTER();
    if (UNLIKELY(t_busy)) return next_valloc(size);
    t_busy = 1;
    void* p = next_valloc(size);
    if (UNLIKELY(after_alloc(p, size))) REPORT_ALLOC(p, size);
    t_busy = 0;
    return p;
}

EXPORT void* pvalloc(size_t size) {
    if (UNLIKELY(in_resolve)) return boot_alloc(size, 4096);
    ENTER();
    if (UNLIKELY(t_busy)) return next_pvalloc(size);
    t_busy = 1;
    void* p = next_pvalloc(size);
    if (UNLIKELY(after_alloc(p, size))) REPORT_ALLOC(p, size);
    t_busy = 0;
    return p;
}

#endif /* MEMTOP_PYTHON_ONLY */

/* --- CPython's object allocator ---------------------------------------- */

/*
 * MEMTOP_SAMPLE_PYTHON=1 (memtop --python-objects --sample N -- CMD): in a
 * CPython process, Python's object allocator is sampled here too, so that
 * an unsampled object costs a subtraction instead of a uprobe trap at one
 * of pymalloc's inlined sites (docs/design.md, "Python's object allocator").
 *
 * The hooks wrap the PYMEM_DOMAIN_OBJ and PYMEM_DOMAIN_MEM allocators (both
 * pymalloc's by default, and both what memtop's exact Python domain counts)
 * through CPython's public PyMem_SetAllocator, installed from this
 * library's constructor, before the interpreter's main() runs: CPython's
 * pre-initialization sets the allocators again only when asked to
 * (PYTHONMALLOC, or the development mode's debug hooks), which memtop
 * checks too (user/app/attacher.cpp) and then probes pymalloc's sites
 * instead. On LTO builds such as Debian's, pymalloc's inlined fast path
 * first checks that the domain's allocator is still pymalloc's own: with
 * the hook installed every call goes through it, as under tracemalloc.
 *
 * A sampled object is reported to memtop_sampled_py_alloc (the hook's caller
 * as the stack's start, like the native hooks), its free to
 * memtop_sampled_py_free; both counted in the Python domain, apart from the
 * heap. The forward runs with t_busy set: a block over 512 bytes that
 * pymalloc passes on to PyMem_RawMalloc reaches malloc() above, which then
 * forwards it unsampled, so the native heap does not count it again. The GIL
 * serialises these calls; the countdown is per thread and the set is the
 * lock-free one anyway.
 */

/* CPython's PyMemAllocatorEx and domains (Include/cpython/pymem.h), stable
 * since 3.5. */
struct py_allocator {
    void* ctx;
    void* (*malloc)(void* ctx, size_t size);
    void* (*calloc)(void* ctx, size_t nelem, size_t elsize);
    void* (*realloc)(void* ctx, void* ptr, size_t new_size);
    void (*free)(void* ctx, void* ptr);
};
enum { PY_DOMAIN_RAW = 0, PY_DOMAIN_MEM = 1, PY_DOMAIN_OBJ = 2 };

/* The allocators the hooks forward to: each hook's ctx is its domain's. */
static struct py_allocator py_next[3];

#define REPORT_PY_ALLOC(p, size)                                                                          \
    do {                                                                                                  \
        uintptr_t* fa_ = (uintptr_t*)__builtin_frame_address(0);                                          \
        memtop_sampled_py_alloc_local((p), (size), fa_[1], (uintptr_t)(fa_ + 1), fa_[0], take_dropped()); \
    } while (0)

static inline int py_sampled(void* p, size_t size) {
    return p && sample_call(&t_python, size) && set_add(&python_set, (uintptr_t)p, size);
}

static inline void py_before_free(void* p) {
    uint64_t size;
    if (p && UNLIKELY(set_take(&python_set, (uintptr_t)p, &size))) memtop_sampled_py_free_local(p, take_dropped());
}

static void* py_malloc_hook(void* ctx, size_t size) {
    const struct py_allocator* a = ctx;
    int busy = t_busy;
    t_busy = 1;
    void* p = a->malloc(a->ctx, size);
    if (UNLIKELY(!busy && py_sampled(p, size))) REPORT_PY_ALLOC(p, size);
    t_busy = busy;
    return p;
}

static void* py_calloc_hook(void* ctx, size_t n, size_t size) {
    const struct py_allocator* a = ctx;
    int busy = t_busy;
    t_busy = 1;
    void* p = a->calloc(a->ctx, n, size);
    size_t bytes = n * size; /* p is NULL on overflow */
    if (UNLIKELY(!busy && py_sampled(p, bytes))) REPORT_PY_ALLOC(p, bytes);
    t_busy = busy;
    return p;
}

/* As realloc_hooked: the old block, if sampled, leaves first; the new one is
 * an object of `size` bytes; a failed realloc leaves the old one live. */
static void* py_realloc_hook(void* ctx, void* p, size_t size) {
    const struct py_allocator* a = ctx;
    int busy = t_busy;
    t_busy = 1;
    uintptr_t* fa = (uintptr_t*)__builtin_frame_address(0);
    uint64_t old_size = 0;
    int old_sampled = !busy && p && set_take(&python_set, (uintptr_t)p, &old_size);
    if (old_sampled) memtop_sampled_py_free_local(p, take_dropped());
    void* q = a->realloc(a->ctx, p, size);
    if (!q) {
        if (old_sampled && size && set_add(&python_set, (uintptr_t)p, old_size))
            memtop_sampled_py_alloc_local(p, old_size, fa[1], (uintptr_t)(fa + 1), fa[0], take_dropped());
    } else if (!busy && py_sampled(q, size)) {
        memtop_sampled_py_alloc_local(q, size, fa[1], (uintptr_t)(fa + 1), fa[0], take_dropped());
    }
    t_busy = busy;
    return q;
}

static void py_free_hook(void* ctx, void* p) {
    const struct py_allocator* a = ctx;
    int busy = t_busy;
    t_busy = 1;
    if (!busy) py_before_free(p);
    a->free(a->ctx, p);
    t_busy = busy;
}

/* Set and not empty: CPython's pre-initialization installs allocators of its
 * own then, over the hooks. */
static int env_set(const char* name) {
    const char* v = getenv(name);
    return v && *v;
}

/* -X dev in the process's own arguments (CPython's debug hooks replace the
 * hooks then): the same test as memtop's (app/sampler_preload.cpp,
 * python_hook_refused), so that memtop probes pymalloc's sites exactly when
 * this library stays out, and never both. Read without allocating. */
static int dev_mode_argument(void) {
    static char buf[8192];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    int prev_x = 0;
    for (char* a = buf; a < buf + n; a += strlen(a) + 1) {
        if (strcmp(a, "-Xdev") == 0 || (prev_x && strcmp(a, "dev") == 0)) return 1;
        prev_x = a != buf && strcmp(a, "-X") == 0;
    }
    return 0;
}

#ifdef MEMTOP_PYTHON_ONLY
/* The raw domain (PyMem_RawMalloc: glibc's malloc), wrapped so that the
 * native heap, traced exactly by memtop's probes on malloc, does not count
 * what pymalloc passes on to it for a Python block over 512 bytes: inside
 * an object hook (t_busy) the call is the Python domain's, and memtop is
 * told so first (MEMTOP_PY_MSG_RAW: its next malloc, calloc or realloc on
 * this thread is not the heap's; bpf/pymalloc.h). Any other call is a tail
 * call: the stack at malloc is the unwrapped one. */
static struct py_allocator py_raw_next;

/* A calloc too: --exact leaves Python's calloc'd blocks over 512 bytes in
 * the heap (pymalloc's calloc sites are not decoded); here the object hook
 * samples them, so the heap must not count them again. */
static void py_raw_mark(void) {
    if (t_busy) memtop_sampled_py_free_local((void*)MEMTOP_PY_MSG_RAW, take_dropped());
}

static void* py_raw_malloc(void* ctx, size_t size) {
    const struct py_allocator* a = ctx;
    /* Size 0 (pymalloc's malloc(1)) stays the heap's, as in the exact
     * domain (bpf/pymalloc.h, py_malloc). */
    if (size) py_raw_mark();
    return a->malloc(a->ctx, size);
}

static void* py_raw_calloc(void* ctx, size_t n, size_t size) {
    const struct py_allocator* a = ctx;
    py_raw_mark();
    return a->calloc(a->ctx, n, size);
}

static void* py_raw_realloc(void* ctx, void* p, size_t size) {
    const struct py_allocator* a = ctx;
    py_raw_mark();
    return a->realloc(a->ctx, p, size);
}

static void py_raw_free(void* ctx, void* p) {
    const struct py_allocator* a = ctx;
    a->free(a->ctx, p);
}
#endif

extern void PyMem_GetAllocator(int, struct py_allocator*) __attribute__((weak, visibility("default")));
extern void PyMem_SetAllocator(int, struct py_allocator*) __attribute__((weak, visibility("default")));

static void (*py_get)(int, struct py_allocator*);
static int py_installed; /* the object hooks were installed */

static void python_install(void) {
    const char* on = getenv("MEMTOP_SAMPLE_PYTHON");
    if (!mean_bytes || !on || strcmp(on, "1") != 0) return;
    if (env_set("PYTHONMALLOC") || env_set("PYTHONDEVMODE") || dev_mode_argument()) return;
    /* The executable's or a linked libpython's: a process that is not
     * CPython has neither. Weak references, resolved by the loader: a
     * failed dlsym would malloc its error message, and the Python-only
     * sampler must not change the exact heap of a process by one block. */
    void (*get)(int, struct py_allocator*) = PyMem_GetAllocator;
    void (*set)(int, struct py_allocator*) = PyMem_SetAllocator;
    if (!get || !set) return;
    py_get = get;
    static const int domains[] = {PY_DOMAIN_MEM, PY_DOMAIN_OBJ};
    for (size_t i = 0; i < sizeof domains / sizeof domains[0]; i++) {
        int d = domains[i];
        get(d, &py_next[d]);
        if (!py_next[d].malloc || !py_next[d].calloc || !py_next[d].realloc || !py_next[d].free) continue;
        struct py_allocator hook = {&py_next[d], py_malloc_hook, py_calloc_hook, py_realloc_hook, py_free_hook};
        set(d, &hook);
        if (d == PY_DOMAIN_OBJ) py_installed = 1;
    }
#ifdef MEMTOP_PYTHON_ONLY
    get(PY_DOMAIN_RAW, &py_raw_next);
    if (py_installed && py_raw_next.malloc && py_raw_next.calloc && py_raw_next.realloc && py_raw_next.free) {
        struct py_allocator raw = {&py_raw_next, py_raw_malloc, py_raw_calloc, py_raw_realloc, py_raw_free};
        set(PY_DOMAIN_RAW, &raw);
    }
#endif
}

/* Whether CPython replaced the object hook since python_install: its debug
 * hooks (-X dev=1 and other spellings memtop does not recognise, a debug
 * build), PYTHONMALLOC set from inside. A wrapper that forwards to the hook
 * (tracemalloc's, still started at exit) keeps it: its ctx is the allocator
 * it wraps. */
static int python_hooks_lost(void) {
    if (!py_installed || !py_get) return 0;
    struct py_allocator cur;
    py_get(PY_DOMAIN_OBJ, &cur);
    if (cur.malloc == py_malloc_hook) return 0;
    if (cur.ctx && ((const struct py_allocator*)cur.ctx)->malloc == py_malloc_hook) return 0;
    return 1;
}

/* What the set had no room for since the last report goes to memtop before
 * the process ends (a free of NULL carries only the count); and whether the
 * Python domain was counted at all (MEMTOP_PY_MSG_HOOKS_LOST). */
__attribute__((destructor)) static void sampler_report_dropped(void) {
    uint64_t d = take_dropped();
    if (python_hooks_lost()) {
        memtop_sampled_py_free_local((void*)MEMTOP_PY_MSG_HOOKS_LOST, d);
        return;
    }
    if (d) memtop_sampled_free_local(NULL, 0, d);
}
