/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Exact per-stack heap accounting: the allocator probes.
 *
 * Hot path (every traced malloc/free), in order of cost after the trap:
 *   entry:  one task-storage lookup, a stack walk (stack.h), an FNV hash of
 *           the frames. Under --sample (sample.h) the walk only for a
 *           sampled call: an unsampled one costs the lookup and a subtraction,
 *           its return only the lookup, its free one failed lookup.
 *   return: task-storage lookup, stack/alloc/agg/proc map operations, atomics.
 *   free:   proc lookup, alloc lookup+delete, agg and proc atomics.
 * Nothing else happens per call; new-stack notices go to user space through
 * the event ring buffer.
 *
 * One entry program per argument layout (enum memtop_kind), one return
 * program for them all, one free program. The per-thread state between
 * entry and return is common.h's call_state.
 */
#ifndef MEMTOP_HEAP_H
#define MEMTOP_HEAP_H

#include "common.h"
#include "stack.h"
#include "sample.h"
#include "python_frames.h"
#include "pymalloc_domain.h"

/* How far below operator new's entry sp its inner allocation may start:
 * libstdc++'s new and its nothrow/aligned wrappers use a few words. */
#define ADOPT_WINDOW 512

/* Retries of a map update or delete that failed for a reason other than
 * the answer itself (missing, existing, full). */
#define MAP_RETRIES 4

/* Live allocations and per-stack aggregates. Sizes are set by the loader
 * before load (--max-allocs, --max-aggs). The allocation table is allocated
 * as used, not up front: a preallocated one cost 104 bytes per entry
 * whether used or not (54.5 MB at 2^19 entries), an empty one costs its
 * buckets (16 bytes per entry: 32 MiB at the default 2^21), and each live
 * block about 96 bytes more. So its size can be large enough for programs
 * with millions of live blocks (PYTHONMALLOC=malloc python3) without the
 * kernel holding that memory for the small ones. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 21);
	__type(key, struct memtop_alloc_key);
	__type(value, struct memtop_alloc_val);
} allocs SEC(".maps");

/* Allocated as used, like `stacks`: an aggregate is created once per
 * (process instance, stack[, size]). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 17);
	__type(key, struct memtop_agg_key);
	__type(value, struct memtop_agg_val);
} aggs SEC(".maps");

/*
 * Every uprobe program runs on the traced thread's own kernel stack, never on
 * a private stack shared with other threads.
 *
 * Since Linux 6.13 the verifier gives a kprobe-type program (uprobes are
 * kprobe-type) whose frame is 64 bytes or more a private stack: one per CPU,
 * used by every run of that program on that CPU (bpf_enable_priv_stack()).
 * That is safe only when no run can start while another run on the same CPU
 * is unfinished. Uprobe programs run in the thread that hit the probe with
 * migration disabled but preemption enabled, and no per-CPU counter turns a
 * second run away. On a preemptible kernel (preempt=full or lazy; 7.x offers
 * nothing else) a thread preempted inside free_entry lets another thread run
 * free_entry on the same CPU in the same frame, and the first thread then
 * continues with the second one's key, pointers and spilled registers. On 7.3
 * that showed as frees whose record was not found, records stored under
 * another key, and one thread's counts landing on another thread.
 *
 * The verifier gives no private stack to a program that contains a tail call
 * (check_max_stack_depth(); has_tail_call comes from a scan of the
 * instructions, before any of them is verified). So each uprobe program starts
 * with a tail call into this array. Nothing ever puts a program into it, so
 * the call falls through. tests/unit/test_bpf_object.cpp checks that every
 * uprobe program has it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} task_stack_only SEC(".maps");

static __always_inline void use_task_stack(void *ctx)
{
	bpf_tail_call(ctx, &task_stack_only, 0);
}

/* The same for the entry programs that may be loaded as uprobe sessions
 * (session_entry() in user/kernel/programs.h): the kernel lets programs of
 * one attach type only share a program array (6.18 refuses the load with
 * EINVAL otherwise), and those programs are sessions or not together. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} task_stack_only_alloc SEC(".maps");

static __always_inline void use_task_stack_alloc(void *ctx)
{
	bpf_tail_call(ctx, &task_stack_only_alloc, 0);
}

/* --cgroup/--container: probes are on every process mapping the files, and
 * only tasks in target_cgroup (or below it) are traced. */
const volatile __u32 cgroup_filter = 0;

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target_cgroup SEC(".maps");

/*
 * Uprobe sessions (Linux 6.13+, set by the loader where it attaches the
 * allocation entry programs as BPF_TRACE_UPROBE_SESSION links): the entry
 * program runs at the return too, and its result at entry decides whether
 * the return is trapped at all (0: yes). Every call that needs nothing at
 * its return leaves it untrapped: a nested call, and under --sample an
 * unsampled call of a function that makes no allocator call of its own
 * (session_leaf()). The return half is told apart without the session
 * kfuncs, whose prototype changed in Linux 7.0 (libbpf 1.1 cannot load one
 * declaration on both): at the return the registers' pc is the return
 * address, at entry it is the probed address, which bpf_get_func_ip gives
 * in both.
 */
const volatile __u32 uprobe_session = 0;

static __always_inline int session_return(struct pt_regs *ctx)
{
	return uprobe_session && bpf_get_func_ip(ctx) != PT_REGS_IP(ctx);
}

/* Calls that make no call to a probed allocator function before they
 * return (glibc's, jemalloc's, tcmalloc's, mimalloc's malloc, calloc and
 * aligned allocations): an unsampled one needs no state, so its return
 * need not be trapped. realloc can call malloc (realloc(NULL, n), mmapped
 * blocks), operator new does. */
static __always_inline int session_leaf(__u32 kind)
{
	return kind == MEMTOP_KIND_MALLOC || kind == MEMTOP_KIND_CALLOC || kind == MEMTOP_KIND_MEMALIGN ||
	       kind == MEMTOP_KIND_POSIX_MEMALIGN;
}

/*
 * Entry: capture the stack now (never in the return probe, whose return
 * address the kernel has replaced with its trampoline). Returns NULL when this
 * call is nested inside an allocator call already being traced (operator new
 * -> malloc, realloc(NULL) -> malloc): the outer call is the one counted.
 * Under --sample an outermost call that is not sampled still owns the state
 * (so that what it calls is nested and its return clears it) but takes no
 * walk and is never recorded (st->sampled = 0).
 */
static __always_inline struct call_state *begin_call(struct pt_regs *ctx, __u32 kind, __u64 size,
                                                     int *want_return)
{
	struct call_state *st;
	*want_return = 0;
	__u64 sp = PT_REGS_SP(ctx);
	__u32 tgid = current_tgid();

	if (tgid == self_tgid)
		return NULL;
	/* Outside the target cgroup: no state, so its return and frees (no
	 * process record) are ignored too. */
	if (cgroup_filter && bpf_current_task_under_cgroup(&target_cgroup, 0) != 1)
		return NULL;
	st = thread_state(1);
	if (!st) {
		count(MEMTOP_CNT_STATE_BUSY);
		return NULL;
	}
	/* Deeper than an outer call in flight: nested. Equal: a tail call from
	 * one entry point into another (reallocarray jumps into realloc); the
	 * outer state already describes the call. Shallower: the state is stale
	 * (its call left without returning) and is replaced. */
	if (st->active && sp <= st->sp) {
		/* operator new has no return probe (see new_entry): the malloc or
		 * aligned_alloc it makes a few words down its stack returns the
		 * block on its behalf. */
		if (st->kind == MEMTOP_KIND_NEW && !st->adopt_sp && st->sp - sp < ADOPT_WINDOW &&
		    (kind == MEMTOP_KIND_MALLOC || kind == MEMTOP_KIND_MEMALIGN ||
		     kind == MEMTOP_KIND_CALLOC)) {
			/* With sessions an unsampled new ends here: its block is
			 * not recorded, so this call's return need not be seen.
			 * (A new that retries after its new handler then sees
			 * the retry as a call of its own.) */
			if (uprobe_session && !st->sampled) {
				st->active = 0;
				st->last_alloc = 0;
				return NULL;
			}
			st->adopt_sp = sp;
			*want_return = 1;
		}
		return NULL;
	}

	st->sp = sp;
	st->kind = kind;
	st->active = 1;
	st->old_found = 0;
	st->adopt_sp = 0;
	st->size = size;
	/* Plain calls allocate from the thread's default heap; the heap API's
	 * programs set their own after this. */
	st->heap = st->mi_default_heap;
	st->old_heap = 0;
	st->flags = 0;
#ifndef MEMTOP_COMPAT
	/* A Python block over 512 bytes: its malloc adopts it (pymalloc.h).
	 * Under the Python-only sampler the raw call is not the heap's at all:
	 * recorded nowhere, as an unsampled call (its free finds nothing). A
	 * raw realloc is dropped only if its old block is not the heap's
	 * (realloc_begin decides): the exact domain keeps a heap block (a
	 * PyMem_Malloc(0)'s malloc(1)) in the heap when it is resized. */
	int py_drop =
	        st->py_adopt == PY_ADOPT_DROP && (kind == MEMTOP_KIND_MALLOC || kind == MEMTOP_KIND_CALLOC);
	st->py_adopted = 0;
	int py_keep = 0;
	if (st->py_adopt == 1 && (kind == MEMTOP_KIND_MALLOC || kind == MEMTOP_KIND_CALLOC))
		st->py_adopted = py_keep = 1;
	else if (st->py_adopt == PY_ADOPT_DROP && kind == MEMTOP_KIND_REALLOC)
		st->py_adopted = PY_ADOPT_DROP;
	st->py_adopt = 0;
#else
	int py_drop = 0, py_keep = 0;
#endif
	/* Decided before the walk: an unsampled call takes none. A block the
	 * Python domain adopts is that domain's, counted whatever the heap's
	 * countdown says (the domain samples its objects at pymalloc's sites,
	 * pymalloc.h, and keeps the blocks beneath it exact). */
	st->sampled = py_drop ? 0 : py_keep ? 1 : sample_call(st, size);
	*want_return = 1;
	if (!st->sampled) {
		/* Sessions: an unsampled leaf call keeps no state and takes no
		 * return trap. It still allocates: a sampled block freed after
		 * it is not temporary. */
		if (uprobe_session && session_leaf(kind)) {
			st->active = 0;
			st->last_alloc = 0;
			*want_return = 0;
		}
		return st;
	}

	/* Frame 0: the caller's return address, at [sp] on entry. */
	__u64 ret = 0;
	struct unwind_scratch *scratch = NULL;
#ifndef MEMTOP_COMPAT
	/* Unwind tables: one read of the stack from sp on (the window) serves
	 * [sp] and the first frames' slots. */
	int have_ret = 0;
	if (dwarf_unwind) {
		scratch = &st->scratch;
		scratch->win_len = 0; /* never a previous walk's memory */
		if (!(sp & 7) && window_fill(scratch, sp)) {
			ret = *(__u64 *)scratch->win;
			have_ret = 1;
		}
	}
	if (!have_ret)
#endif
		if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp))
			ret = 0;
	st->stack_id = walk_user_stack(&st->stack, ret, sp, PT_REGS_FP(ctx), tgid, STACK_AT_CALL, scratch);
	/* A CPython process: its Python frames join the stack and its id. */
	if (python_process(st, tgid))
		st->stack_id = python_frames(st->stack_id, tgid);
	return st;
}

static __always_inline struct memtop_proc *get_proc(__u32 tgid)
{
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	if (p)
		return p;

	struct memtop_proc fresh = {};
	fresh.epoch = NEW_EPOCH();
	bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	/* NOEXIST: another thread of the same process may win the race; then
	 * its entry is the one to use. */
	bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST);
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		count(MEMTOP_CNT_PROC_MAP_FULL);
	return p;
}

static __always_inline struct memtop_agg_val *get_agg(struct memtop_agg_key *k)
{
	struct memtop_agg_val *a = bpf_map_lookup_elem(&aggs, k);
	if (a)
		return a;
	struct memtop_agg_val zero = {};
	bpf_map_update_elem(&aggs, k, &zero, BPF_NOEXIST);
	a = bpf_map_lookup_elem(&aggs, k);
	if (!a)
		count(MEMTOP_CNT_AGG_MAP_FULL);
	return a;
}

/* The aggregate of (process instance, stack[, size]): sampled, per size,
 * for user space's weights (sample.h). */
static __always_inline void agg_key(struct memtop_agg_key *k, __u32 tgid, const struct memtop_proc *p,
                                    __u64 stack_id, __u64 block_size)
{
	k->tgid = tgid;
	k->epoch = p->epoch;
	k->stack_id = stack_id;
	k->size = heap_sample_bytes ? block_size : 0;
}

/* a: the aggregate if the caller has looked it up already, else NULL. */
static __always_inline void charge(struct memtop_proc *p, __u32 tgid, __u64 stack_id, __u64 block_size,
                                   __s64 bytes, __s64 nallocs, int cumulative, int temporary,
                                   struct memtop_agg_val *a)
{
	if (!a) {
		struct memtop_agg_key k;
		agg_key(&k, tgid, p, stack_id, block_size);
		a = get_agg(&k);
	}
	if (a) {
		__sync_fetch_and_add(&a->bytes, bytes);
		__sync_fetch_and_add(&a->allocs, nallocs);
		if (cumulative) {
			__sync_fetch_and_add(&a->alloc_bytes_total, bytes);
			__sync_fetch_and_add(&a->allocs_total, 1);
		}
		if (temporary) {
			__sync_fetch_and_add(&a->temp_bytes, -bytes);
			__sync_fetch_and_add(&a->temp_allocs, 1);
		}
	}
}

/* Forget a live allocation; only the thread whose delete succeeds accounts
 * for it, so a racing double free cannot subtract twice. */
static __always_inline int take_alloc(struct memtop_proc *p, __u32 tgid, __u64 addr,
                                      struct memtop_alloc_val *out, int temporary)
{
	struct memtop_alloc_key k = {.tgid = tgid, .epoch = p->epoch, .addr = addr};
	struct memtop_alloc_val *v = bpf_map_lookup_elem(&allocs, &k);
	if (!v)
		return 0;
	*out = *v;
	/* -ENOENT: a racing free of the same block won; it does the accounting.
	 * Anything else is a bucket lock that gave up under contention (the
	 * resilient spinlocks of recent kernels): try again. */
	long err = bpf_map_delete_elem(&allocs, &k);
	for (int i = 0; i < MAP_RETRIES && err && err != -2 /* ENOENT */; i++)
		err = bpf_map_delete_elem(&allocs, &k);
	if (err) {
		if (err != -2)
			count(MEMTOP_CNT_MAP_BUSY);
		return 0;
	}
	charge(p, tgid, out->stack_id, out->size, -(__s64)out->size, -1, 0, temporary, NULL);
	__sync_fetch_and_add(&p->heap_bytes, -(__s64)out->size);
	__sync_fetch_and_add(&p->frees_total, 1);
	return 1;
}

/*
 * mimalloc's heaps (mimalloc.h, whose programs are another object's): the
 * heap tags of blocks, and the heaps memtop saw made. Here, the part of the
 * shared programs: a block allocated from a known heap gets its tag, a free
 * or realloc takes it out. The full build only.
 */
#ifndef MEMTOP_COMPAT
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 21);
	__type(key, struct memtop_alloc_key);
	__type(value, struct memtop_mi_tag);
} mi_blocks SEC(".maps");

/* Heaps memtop saw made: key addr = the heap. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, struct memtop_alloc_key);
	__type(value, __u64);
} mi_heaps SEC(".maps");

/* Inlined, not global functions: a global function's own stack adds to
 * its caller's, and Linux 6.1's verifier refused the shared programs
 * ("combined stack size of 4 calls is 544. Too large") and memtop fell
 * back to the compat build there. Inlined they cost ~400 more verified
 * instructions a program (docs/hot-path.md). */

/* The block k gets the tag of heap if memtop knows that heap. */
static __always_inline int mi_tag_block(__u32 tgid, __u32 epoch, __u64 addr, __u64 heap, __u64 birth_ns)
{
	struct memtop_alloc_key hk = {.tgid = tgid, .epoch = epoch, .addr = heap};
	if (!bpf_map_lookup_elem(&mi_heaps, &hk))
		return 0;
	struct memtop_alloc_key k = {.tgid = tgid, .epoch = epoch, .addr = addr};
	struct memtop_mi_tag t = {.heap = heap, .birth_ns = birth_ns};
	if (bpf_map_update_elem(&mi_blocks, &k, &t, BPF_ANY))
		count(MEMTOP_CNT_ALLOC_MAP_FULL);
	return 0;
}

/* Deletes the tag of the block at addr; returns its heap if the tag is
 * that of the block born at birth_ns (0: any), else 0. */
static __always_inline __u64 mi_untag_block(__u32 tgid, __u32 epoch, __u64 addr, __u64 birth_ns)
{
	struct memtop_alloc_key k = {.tgid = tgid, .epoch = epoch, .addr = addr};
	struct memtop_mi_tag *t = bpf_map_lookup_elem(&mi_blocks, &k);
	if (!t)
		return 0;
	__u64 heap = !birth_ns || t->birth_ns == birth_ns ? t->heap : 0;
	bpf_map_delete_elem(&mi_blocks, &k);
	return heap;
}

static __always_inline void mi_tag(struct memtop_alloc_key *k, __u64 heap, __u64 birth_ns)
{
	if (heap)
		mi_tag_block(k->tgid, k->epoch, k->addr, heap, birth_ns);
}

static __always_inline __u64 mi_untag(struct memtop_proc *p, __u32 tgid, __u64 addr, __u64 birth_ns)
{
	return p->mi_heaps ? mi_untag_block(tgid, p->epoch, addr, birth_ns) : 0;
}
#else
static __always_inline void mi_tag(struct memtop_alloc_key *k, __u64 heap, __u64 birth_ns)
{
}

static __always_inline __u64 mi_untag(struct memtop_proc *p, __u32 tgid, __u64 addr, __u64 birth_ns)
{
	return 0;
}
#endif

/* heap: the mimalloc heap the block is from (0: none memtop knows). */
static __always_inline void record_alloc(__u32 tgid, __u64 addr, __u64 size, __u64 stack_id,
                                         const struct memtop_stack *stack, int undo_free, __u64 heap)
{
	struct memtop_proc *p = get_proc(tgid);
	if (!p)
		return;

	/* The stack's aggregate in this process instance. Once it exists, the
	 * stack is stored (user space deletes only stacks no aggregate names,
	 * and the thread that made the aggregate checks the stack after it):
	 * the common case takes this one lookup, no lookup in `stacks`. */
	struct memtop_agg_val *a = NULL;
	if (stack) {
		struct memtop_agg_key ak;
		agg_key(&ak, tgid, p, stack_id, size);
		a = bpf_map_lookup_elem(&aggs, &ak);
		if (!a)
			store_stack(&stack_id, stack, tgid, p);
		if (stack->flags & MEMTOP_STACK_TRUNCATED)
			count(MEMTOP_CNT_STACK_TRUNCATED);
	}

	struct memtop_alloc_key k = {.tgid = tgid, .epoch = p->epoch, .addr = addr};
	struct memtop_alloc_val v = {.size = size, .stack_id = stack_id, .birth_ns = bpf_ktime_get_ns()};
	long err = bpf_map_update_elem(&allocs, &k, &v, BPF_NOEXIST);
	for (int i = 0; i < MAP_RETRIES && err && err != -17 && err != -7 /* E2BIG: full */; i++)
		err = bpf_map_update_elem(&allocs, &k, &v, BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		/* The allocator handed this address out again without a free we
		 * saw: the old block is gone, account for it before reuse. */
		struct memtop_alloc_val old;
		if (take_alloc(p, tgid, addr, &old, 0))
			count(MEMTOP_CNT_MISSED_FREE);
		err = bpf_map_update_elem(&allocs, &k, &v, BPF_NOEXIST);
	}
	if (err) {
		/* Still refused after the retries: the map is full (kernels
		 * before 6.12 do not all say so with E2BIG). */
		count(MEMTOP_CNT_ALLOC_MAP_FULL);
		return;
	}

	charge(p, tgid, stack_id, size, size, 1, !undo_free, 0, a);
	/* User space deletes the stacks no agg references (purge_instances). It
	 * may have deleted ours between store_stack and the charge that made
	 * the aggregate naming it. */
	if (stack && !a && stack_id != MEMTOP_STACK_LOST && !bpf_map_lookup_elem(&stacks, &stack_id))
		bpf_map_update_elem(&stacks, &stack_id, stack, BPF_NOEXIST);
	__s64 now = ADD_FETCH(&p->heap_bytes, (__s64)size);
	if (undo_free)
		__sync_fetch_and_add(&p->frees_total, -1);
	else
		__sync_fetch_and_add(&p->allocs_total, 1);
	raise_peak(&p->heap_peak_bytes, now);
	mi_tag(&k, heap, v.birth_ns);
}

/* The return half (below): a return probe, or a session program at the return. */
static __always_inline int finish_call(struct pt_regs *ctx, __u64 ret);

/* 0: trap this call's return (sessions; a classic uprobe's result means
 * nothing). */
#define RETURN_WANTED(want) ((want) ? 0 : 1)

/* count * size for reallocarray, mi_reallocn and mi_new_n; an overflowing
 * product (the call fails) must not look like size 0 (a free). */
static __always_inline __u64 array_bytes(__u64 nmemb, __u64 size)
{
	__u64 bytes = nmemb * size, n = nmemb;
	/* Opaque to clang, which would turn the check into __multi3. */
	asm volatile("" : "+r"(n));
	if (n && bytes / n != size)
		bytes = ~0ULL;
	return bytes;
}

SEC("uprobe")
int BPF_KPROBE(malloc_entry, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	begin_call(ctx, MEMTOP_KIND_MALLOC, size, &want);
	return RETURN_WANTED(want);
}

/* Entry only. A return probe replaces the return address with the kernel's
 * trampoline; when operator new throws bad_alloc, the C++ unwinder finds no
 * unwind info for the trampoline and calls std::terminate. So the result is
 * taken from the allocation operator new makes inside (see begin_call). */
SEC("uprobe")
int BPF_KPROBE(new_entry, __u64 size)
{
	use_task_stack(ctx);
	int want;
	begin_call(ctx, MEMTOP_KIND_NEW, size, &want);
	return 0;
}

/* operator new of an allocator that does not go through malloc (jemalloc,
 * tcmalloc, mimalloc): nothing inside returns the block on new's behalf, so
 * alloc_ret_site takes it at new's own `ret` instructions. Nested allocator
 * calls inside it are not adopted (begin_call adopts for MEMTOP_KIND_NEW
 * only). */
SEC("uprobe")
int BPF_KPROBE(new_own_entry, __u64 size)
{
	use_task_stack(ctx);
	int want;
	begin_call(ctx, MEMTOP_KIND_NEW_OWN, size, &want);
	return 0;
}

/* mimalloc's mi_new_n(count, size) (what mi_stl_allocator allocates with):
 * new_own_entry's, for count * size bytes. An overflowing product makes it
 * throw or return NULL: counted as nothing either way. */
SEC("uprobe")
int BPF_KPROBE(new_n_own_entry, __u64 count, __u64 size)
{
	use_task_stack(ctx);
	int want;
	begin_call(ctx, MEMTOP_KIND_NEW_OWN, array_bytes(count, size), &want);
	return 0;
}

#ifndef MEMTOP_COMPAT
/* The three above in one program, told apart by the attach cookie, where
 * alloc_entry is used (see there): ~6 ms of verifier time instead of ~18. */
SEC("uprobe")
int BPF_KPROBE(op_new_entry, __u64 a0, __u64 a1)
{
	use_task_stack(ctx);
	__u64 which = bpf_get_attach_cookie(ctx);
	int want;
	begin_call(ctx, which == MEMTOP_ENTRY_NEW ? MEMTOP_KIND_NEW : MEMTOP_KIND_NEW_OWN,
	           which == MEMTOP_ENTRY_NEW_N_OWN ? array_bytes(a0, a1) : a0, &want);
	return 0;
}
#endif

/* An entry-type probe on a `ret` of such an operator new (or of code it
 * tail-calls), where rax holds the block and sp is back at new's entry sp:
 * the same moment a return probe would see, without replacing the return
 * address the C++ unwinder reads when new throws. The same code serves
 * malloc's slow paths too (tcmalloc tail-calls shared functions); only the
 * thread whose outermost call is that operator new, at that very sp, counts. */
SEC("uprobe")
int BPF_KPROBE(alloc_ret_site)
{
	use_task_stack(ctx);
	struct call_state *st = thread_state(0);
	if (!st || !st->active || st->kind != MEMTOP_KIND_NEW_OWN || PT_REGS_SP(ctx) != st->sp)
		return 0;
	st->active = 0;
	__u64 ret = PT_REGS_RC(ctx);
	if (ret) {
		if (st->sampled)
			record_alloc(current_tgid(), ret, st->size, st->stack_id, &st->stack, 0, st->heap);
		st->last_alloc = ret;
	}
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(calloc_entry, __u64 nmemb, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	/* Overflow makes calloc fail: never counted. */
	begin_call(ctx, MEMTOP_KIND_CALLOC, nmemb * size, &want);
	return RETURN_WANTED(want);
}

SEC("uprobe")
int BPF_KPROBE(memalign_entry, __u64 align, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	begin_call(ctx, MEMTOP_KIND_MEMALIGN, size, &want);
	return RETURN_WANTED(want);
}

SEC("uprobe")
int BPF_KPROBE(posix_memalign_entry, __u64 memptr, __u64 align, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_POSIX_MEMALIGN, size, &want);
	if (st)
		st->arg_ptr = memptr;
	return RETURN_WANTED(want);
}

/* realloc takes the old block out at entry: if realloc frees it and another
 * thread gets the same address before our return probe runs, that thread's
 * record must not be the one we delete. A failed realloc puts it back. */
static __always_inline int realloc_after(struct call_state *st, int want, __u64 ptr, __u64 heap, __u32 flags)
{
	if (!st)
		return RETURN_WANTED(want);
	st->arg_ptr = ptr;
	if (heap)
		st->heap = heap;
	st->flags = flags;
	if (ptr) {
		__u32 tgid = current_tgid();
		struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
		struct memtop_alloc_val old;
		if (p && take_alloc(p, tgid, ptr, &old, 0)) {
			st->old_found = 1;
			st->old_size = old.size;
			st->old_stack_id = old.stack_id;
			/* Resized in place or failed, the block stays in its heap. */
			st->old_heap = mi_untag(p, tgid, ptr, old.birth_ns);
		}
#ifndef MEMTOP_COMPAT
		/* A block of Python's domain (PyMem_RawRealloc under PyMem_Realloc):
		 * its new block stays in the domain. */
		else if (p && st->py_on && py_take(tgid, ptr, &old)) {
			st->old_found = 1;
			st->old_size = old.size;
			st->old_stack_id = old.stack_id;
			st->py_adopted = 1;
			/* The heap's countdown left it unsampled (--sample): not
			 * walked, but the domain's block, kept exact, under the
			 * stack that made it. */
			if (!st->sampled) {
				st->sampled = 1;
				st->stack_id = old.stack_id;
				st->py_adopted = PY_ADOPT_OLD_STACK;
			}
		}
#endif
	}
#ifndef MEMTOP_COMPAT
	/* The Python-only sampler's raw realloc (begin_call): not the heap's
	 * unless its old block was. */
	if (st->py_adopted == PY_ADOPT_DROP) {
		st->py_adopted = 0;
		if (!st->old_found)
			st->sampled = 0;
	}
#endif
	return RETURN_WANTED(want);
}

static __always_inline int realloc_begin(struct pt_regs *ctx, __u64 ptr, __u64 size, __u64 heap, __u32 flags)
{
	int want;
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_REALLOC, size, &want);
	return realloc_after(st, want, ptr, heap, flags);
}

SEC("uprobe")
int BPF_KPROBE(realloc_entry, __u64 ptr, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return finish_call(ctx, PT_REGS_RC(ctx));
	return realloc_begin(ctx, ptr, size, 0, 0);
}

/* reallocarray(ptr, nmemb, size) is realloc(ptr, nmemb * size) that fails on
 * overflow. */
SEC("uprobe")
int BPF_KPROBE(reallocarray_entry, __u64 ptr, __u64 nmemb, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return finish_call(ctx, PT_REGS_RC(ctx));
	return realloc_begin(ctx, ptr, array_bytes(nmemb, size), 0, 0);
}

#ifndef MEMTOP_COMPAT
/* The six entries above in one program, told apart by the attach cookie
 * (enum memtop_entry_cookie; Linux 5.15): each of them is begin_call's whole
 * stack walk inlined, and the verifier took ~25 ms for each, most of
 * memtop's start-up. The loader uses this one from Linux 6.6 on, the six
 * before (Tracer::load_variant says why). Its frame is 16 bytes bigger than
 * theirs (the kind is no constant here), which 6.1's verifier does not
 * take. */
SEC("uprobe")
int BPF_KPROBE(alloc_entry, __u64 a0, __u64 a1, __u64 a2)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return finish_call(ctx, PT_REGS_RC(ctx));
	__u64 which = bpf_get_attach_cookie(ctx), size = a0, ptr = 0;
	__u32 kind = MEMTOP_KIND_MALLOC;
	if (which == MEMTOP_ENTRY_CALLOC) {
		/* Overflow makes calloc fail: never counted. */
		kind = MEMTOP_KIND_CALLOC;
		size = a0 * a1;
	} else if (which == MEMTOP_ENTRY_REALLOC || which == MEMTOP_ENTRY_REALLOCARRAY) {
		kind = MEMTOP_KIND_REALLOC;
		ptr = a0;
		size = which == MEMTOP_ENTRY_REALLOC ? a1 : array_bytes(a1, a2);
	} else if (which == MEMTOP_ENTRY_MEMALIGN) {
		kind = MEMTOP_KIND_MEMALIGN;
		size = a1;
	} else if (which == MEMTOP_ENTRY_POSIX_MEMALIGN) {
		kind = MEMTOP_KIND_POSIX_MEMALIGN;
		ptr = a0;
		size = a2;
	}
	int want;
	struct call_state *st = begin_call(ctx, kind, size, &want);
	if (kind == MEMTOP_KIND_REALLOC)
		return realloc_after(st, want, ptr, 0, 0);
	if (kind == MEMTOP_KIND_POSIX_MEMALIGN && st)
		st->arg_ptr = ptr;
	return RETURN_WANTED(want);
}
#endif

SEC("uprobe")
int BPF_KPROBE(free_entry, __u64 ptr)
{
	use_task_stack(ctx);
	if (!ptr)
		return 0;
	__u32 tgid = current_tgid();
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return 0;
	/* --sample: most blocks freed were never sampled; for them one failed
	 * lookup, not the thread's state too (a sampled one is looked up twice). */
	if (heap_sample_bytes) {
		struct memtop_alloc_key k = {.tgid = tgid, .epoch = p->epoch, .addr = ptr};
		if (!bpf_map_lookup_elem(&allocs, &k))
			return 0;
	}
	/* Freed before this thread allocated anything else: temporary. */
	struct call_state *st = thread_state(0);
	int temporary = st && st->last_alloc == ptr;
	if (temporary)
		st->last_alloc = 0;
	struct memtop_alloc_val old;
	int found = take_alloc(p, tgid, ptr, &old, temporary);
	mi_untag(p, tgid, ptr, 0);
	if (found)
		return 0;
#ifndef MEMTOP_COMPAT
	/* A Python-domain block that reached glibc (pymalloc_domain.h). */
	if (st && st->py_on)
		py_forget(tgid, ptr);
#endif
	return 0;
}

/* __cxa_allocate_exception, called inside an allocator call in flight: that
 * call is throwing (bad_alloc from an operator new, or from the new handler
 * it ran) and will never return through a probe, so its state ends here. Left
 * active, it would swallow the exception's own allocation as nested, and
 * every later call from the same depth as a tail call. libstdc++'s new needs
 * none of it (its malloc returned NULL first); jemalloc's, tcmalloc's and
 * mimalloc's throw from inside. */
SEC("uprobe")
int BPF_KPROBE(exception_entry)
{
	use_task_stack(ctx);
	struct call_state *st = thread_state(0);
	if (st && st->active && PT_REGS_SP(ctx) < st->sp)
		st->active = 0;
	return 0;
}

/*
 * The in-process sampler (user/sampler/sampler.c, preloaded by `--sample N
 * -- CMD`): the process samples its own allocations and calls these two
 * empty functions for the sampled ones only. Nothing else of its allocator
 * is probed, so an unsampled call takes no trap at all.
 *
 * memtop_sampled_alloc(ptr, size, ret, sp, fp): a sampled block. ret, sp and
 * fp are those of the hooked allocator call at its entry (the sampler's own
 * frames are not walked): the walk and the record are those of a sampled
 * call at that entry and its return (begin_call, finish_call). The sampling
 * was done already: no countdown here.
 */
/* The sampler's count of sampled allocations it could not report (its set
 * of sampled blocks was full): the probe points' last argument (r9 of the alloc, rdx of the free). */
static __always_inline void sampler_dropped(__u64 n)
{
	if (n) {
		__u32 key = MEMTOP_CNT_SAMPLER_SET_FULL;
		__u64 *c = bpf_map_lookup_elem(&counters, &key);
		if (c)
			__sync_fetch_and_add(c, n); /* as count(): preemptible */
	}
}

/* The record of a sampled block, in a subprogram of its own: inlined, its
 * locals made sampled_alloc_entry's frame so large that with the walk's
 * calls beneath it Linux 6.1's verifier refused the program ("combined
 * stack size of 4 calls is 544"), and memtop fell back to the compat
 * build there. Here they are on no path with the walk. */
static __noinline int sampled_record(__u32 tgid, __u64 ptr, __u64 size)
{
	struct call_state *st = thread_state(0);
	if (st)
		record_alloc(tgid, ptr, size, st->stack_id, &st->stack, 0, 0);
	return 0;
}

/* A sampled block's stack, walked from the hook's caller (ret, sp, fp) as
 * the probes walk at malloc's entry, with the thread's Python frames: in
 * the thread's state (stack, stack_id). 0 when the state is busy. Shared
 * by the native and the Python domain's sampled points (pymalloc.h). */
static __always_inline int sampled_walk(__u32 tgid, __u64 ret, __u64 sp, __u64 fp)
{
	struct call_state *st = thread_state(1);
	if (!st) {
		count(MEMTOP_CNT_STATE_BUSY);
		return 0;
	}
	struct unwind_scratch *scratch = NULL;
#ifndef MEMTOP_COMPAT
	if (dwarf_unwind) {
		scratch = &st->scratch;
		scratch->win_len = 0; /* never a previous walk's memory */
		if (!(sp & 7))
			window_fill(scratch, sp);
	}
#endif
	st->stack_id = walk_user_stack(&st->stack, ret, sp, fp, tgid, STACK_AT_CALL, scratch);
	if (python_process(st, tgid))
		st->stack_id = python_frames(st->stack_id, tgid);
	return 1;
}

SEC("uprobe")
int BPF_KPROBE(sampled_alloc_entry, __u64 ptr, __u64 size, __u64 ret, __u64 sp, __u64 fp)
{
	use_task_stack(ctx);
	__u32 tgid = current_tgid();
	if (tgid == self_tgid || !ptr)
		return 0;
	sampler_dropped(ctx->r9);
	if (!sampled_walk(tgid, ret, sp, fp))
		return 0;
	return sampled_record(tgid, ptr, size);
}

/* memtop_sampled_free(ptr, temporary): a sampled block is being freed (before
 * the allocator gets it back). temporary: it was the last block its thread
 * allocated (the sampler knows; no unsampled call reaches memtop). */
SEC("uprobe")
int BPF_KPROBE(sampled_free_entry, __u64 ptr, __u64 temporary)
{
	use_task_stack(ctx);
	__u32 tgid = current_tgid();
	if (tgid != self_tgid)
		sampler_dropped(PT_REGS_PARM3(ctx));
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p || !ptr)
		return 0;
	struct memtop_alloc_val old;
	take_alloc(p, tgid, ptr, &old, (int)temporary & 1);
	return 0;
}

/* The call_state of the call returning now (ret), or NULL: none, or a
 * nested call returned. Its state is done. Shared by finish_call and
 * mimalloc.h's mi_finish_call. */
static __always_inline struct call_state *returning_call(struct pt_regs *ctx, __u64 ret, __u32 tgid)
{
	struct call_state *st = thread_state(0);
	if (!st || !st->active)
		return NULL;

	/* A call returns with sp one slot above its entry sp. */
	__u64 sp = PT_REGS_SP(ctx) - 8;
	if (st->kind == MEMTOP_KIND_NEW) {
		if (!st->adopt_sp || sp != st->adopt_sp)
			return NULL;
		/* The allocation inside operator new returned: the block is new's,
		 * charged to new's caller with the size asked of new. On failure
		 * new retries or throws; either way this state is done. */
		st->active = 0;
		if (ret) {
			if (st->sampled)
				record_alloc(tgid, ret, st->size, st->stack_id, &st->stack, 0, st->heap);
			st->last_alloc = ret;
		}
		return NULL;
	}
	if (sp != st->sp)
		return NULL; /* a nested call returned */
	st->active = 0;
	return st;
}

/* The block (if any) of the call of st, which returned ret. */
static __always_inline int record_return(struct call_state *st, __u32 tgid, __u64 ret)
{
	/* Unsampled (--sample): nothing to record, unless a failed realloc
	 * must give its old block back its record. */
	if (!st->sampled && !(st->kind == MEMTOP_KIND_REALLOC && st->old_found)) {
		/* Still the thread's latest block: a sampled block freed after it
		 * was not temporary. */
		if (st->kind == MEMTOP_KIND_POSIX_MEMALIGN) {
			if ((int)ret == 0)
				st->last_alloc = 0;
		} else if (ret) {
			st->last_alloc = ret;
		}
		return 0;
	}

	__u64 addr = ret, heap = st->heap;

	switch (st->kind) {
	case MEMTOP_KIND_POSIX_MEMALIGN:
		if ((int)ret != 0)
			return 0;
		addr = 0;
		if (bpf_probe_read_user(&addr, sizeof(addr), (void *)st->arg_ptr) || !addr)
			return 0;
		break;
	case MEMTOP_KIND_REALLOC:
		if (!ret) {
			/* size 0 freed the block (glibc); otherwise realloc failed and
			 * the old block is still live: give it back its record (a
			 * failed reallocf, which freed it, ends in mimalloc.h). */
			if (st->size && st->old_found) {
#ifndef MEMTOP_COMPAT
				if (st->py_adopted) {
					py_record(tgid, st->arg_ptr, st->old_size, st->old_stack_id);
					return 0;
				}
#endif
				record_alloc(tgid, st->arg_ptr, st->old_size, st->old_stack_id, NULL, 1,
				             st->old_heap);
			}
			return 0;
		}
		if (!st->sampled) {
			st->last_alloc = ret;
			return 0;
		}
		if (ret == st->arg_ptr)
			heap = st->old_heap; /* in place: still in its mimalloc heap */
		break;
	default:
		if (!ret)
			return 0;
	}
#ifndef MEMTOP_COMPAT
	if (st->py_adopted) {
		struct memtop_proc *p = get_proc(tgid);
		if (p) {
			if (st->py_adopted != PY_ADOPT_OLD_STACK)
				store_stack(&st->stack_id, &st->stack, tgid, p);
			py_record(tgid, addr, st->size, st->stack_id);
		}
		st->last_alloc = addr;
		return 0;
	}
#endif
	record_alloc(tgid, addr, st->size, st->stack_id, &st->stack, 0, heap);
	st->last_alloc = addr;
	return 0;
}

static __always_inline int finish_call(struct pt_regs *ctx, __u64 ret)
{
	__u32 tgid = current_tgid();
	struct call_state *st = returning_call(ctx, ret, tgid);
	if (!st)
		return 0;
	return record_return(st, tgid, ret);
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_return, __u64 ret)
{
	use_task_stack(ctx);
	return finish_call(ctx, ret);
}

#endif /* MEMTOP_HEAP_H */
