// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * memtop's kernel side: exact per-stack heap accounting.
 *
 * Hot path (every traced malloc/free), in order of cost after the trap:
 *   entry:  one task-storage lookup, a frame-pointer walk (16 bytes per frame
 *           with bpf_probe_read_user; bpf_get_stack costs 30x more here, see
 *           field notes section 2), an FNV hash of the frames.
 *   return: task-storage lookup, stack/alloc/agg/proc map operations, atomics.
 *   free:   proc lookup, alloc lookup+delete, agg and proc atomics.
 * Nothing else happens per call; process lifecycle and new-stack notices go
 * to user space through one ring buffer.
 */
#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* How far below operator new's entry sp its inner allocation may start:
 * libstdc++'s new and its nothrow/aligned wrappers use a few words. */
#define ADOPT_WINDOW 512

/* Retries of a map update or delete that failed for a reason other than
 * the answer itself (missing, existing, full). */
#define MAP_RETRIES 4

/* Sizes are set by the loader before load (--max-* options). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 19);
	__type(key, struct memtop_alloc_key);
	__type(value, struct memtop_alloc_val);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, struct memtop_agg_key);
	__type(value, struct memtop_agg_val);
} aggs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 15);
	__type(key, __u32);
	__type(value, struct memtop_rss);
} rss SEC(".maps");

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

/* --cgroup/--container: probes are on every process mapping the files, and
 * only tasks in target_cgroup (or below it) are traced. */
const volatile __u32 cgroup_filter = 0;

#ifndef MEMTOP_COMPAT
/* Anonymous memory mapped per process (bpf/mappings.h), keyed by tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 14);
	__type(key, __u32);
	__type(value, struct memtop_map_proc);
} map_procs SEC(".maps");
#endif

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target_cgroup SEC(".maps");

#include "stack.h"

/*
 * Entry: capture the stack now (never in the return probe, whose return
 * address the kernel has replaced with its trampoline). Returns NULL when this
 * call is nested inside an allocator call already being traced (operator new
 * -> malloc, realloc(NULL) -> malloc): the outer call is the one counted.
 */
static __always_inline struct call_state *begin_call(struct pt_regs *ctx, __u32 kind)
{
	struct call_state *st;
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
		     kind == MEMTOP_KIND_CALLOC))
			st->adopt_sp = sp;
		return NULL;
	}

	st->sp = sp;
	st->kind = kind;
	st->active = 1;
	st->old_found = 0;
	st->adopt_sp = 0;

	/* Frame 0: the caller's return address, at [sp] on entry. */
	__u64 ret = 0;
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp))
		ret = 0;
	st->stack_id = walk_user_stack(&st->stack, ret, sp, PT_REGS_FP(ctx), tgid, STACK_AT_CALL);
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

static __always_inline void charge(struct memtop_proc *p, __u32 tgid, __u64 stack_id, __s64 bytes,
                                   __s64 nallocs, int cumulative)
{
	struct memtop_agg_key k = {.tgid = tgid, .epoch = p->epoch, .stack_id = stack_id};
	struct memtop_agg_val *a = get_agg(&k);
	if (a) {
		__sync_fetch_and_add(&a->bytes, bytes);
		__sync_fetch_and_add(&a->allocs, nallocs);
		if (cumulative) {
			__sync_fetch_and_add(&a->alloc_bytes_total, bytes);
			__sync_fetch_and_add(&a->allocs_total, 1);
		}
	}
}

/* Forget a live allocation; only the thread whose delete succeeds accounts
 * for it, so a racing double free cannot subtract twice. */
static __always_inline int take_alloc(struct memtop_proc *p, __u32 tgid, __u64 addr,
                                      struct memtop_alloc_val *out)
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
	charge(p, tgid, out->stack_id, -(__s64)out->size, -1, 0);
	__sync_fetch_and_add(&p->heap_bytes, -(__s64)out->size);
	__sync_fetch_and_add(&p->frees_total, 1);
	return 1;
}

static __always_inline void record_alloc(__u32 tgid, __u64 addr, __u64 size, __u64 stack_id,
                                         const struct memtop_stack *stack, int undo_free)
{
	struct memtop_proc *p = get_proc(tgid);
	if (!p)
		return;

	if (stack) {
		store_stack(&stack_id, stack, tgid, p);
		if (stack->flags & MEMTOP_STACK_TRUNCATED)
			count(MEMTOP_CNT_STACK_TRUNCATED);
	}

	struct memtop_alloc_key k = {.tgid = tgid, .epoch = p->epoch, .addr = addr};
	struct memtop_alloc_val v = {.size = size, .stack_id = stack_id};
	long err = bpf_map_update_elem(&allocs, &k, &v, BPF_NOEXIST);
	for (int i = 0; i < MAP_RETRIES && err && err != -17 && err != -7 /* E2BIG: full */; i++)
		err = bpf_map_update_elem(&allocs, &k, &v, BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		/* The allocator handed this address out again without a free we
		 * saw: the old block is gone, account for it before reuse. */
		struct memtop_alloc_val old;
		if (take_alloc(p, tgid, addr, &old))
			count(MEMTOP_CNT_MISSED_FREE);
		err = bpf_map_update_elem(&allocs, &k, &v, BPF_NOEXIST);
	}
	if (err) {
		/* Still refused after the retries: the map is full (kernels
		 * before 6.12 do not all say so with E2BIG). */
		count(MEMTOP_CNT_ALLOC_MAP_FULL);
		return;
	}

	charge(p, tgid, stack_id, size, 1, !undo_free);
	/* User space deletes the stacks no agg references (Tracer::forget). It
	 * may have deleted ours between the insert above and the charge. */
	if (stack && stack_id != MEMTOP_STACK_LOST && !bpf_map_lookup_elem(&stacks, &stack_id))
		bpf_map_update_elem(&stacks, &stack_id, stack, BPF_NOEXIST);
	__s64 now = ADD_FETCH(&p->heap_bytes, (__s64)size);
	if (undo_free)
		__sync_fetch_and_add(&p->frees_total, -1);
	else
		__sync_fetch_and_add(&p->allocs_total, 1);
	raise_peak(&p->heap_peak_bytes, now);
}

SEC("uprobe")
int BPF_KPROBE(malloc_entry, __u64 size)
{
	use_task_stack(ctx);
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_MALLOC);
	if (st)
		st->size = size;
	return 0;
}

/* Entry only. A return probe replaces the return address with the kernel's
 * trampoline; when operator new throws bad_alloc, the C++ unwinder finds no
 * unwind info for the trampoline and calls std::terminate. So the result is
 * taken from the allocation operator new makes inside (see begin_call). */
SEC("uprobe")
int BPF_KPROBE(new_entry, __u64 size)
{
	use_task_stack(ctx);
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_NEW);
	if (st)
		st->size = size;
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(calloc_entry, __u64 nmemb, __u64 size)
{
	use_task_stack(ctx);
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_CALLOC);
	if (st)
		st->size = nmemb * size; /* overflow makes calloc fail: never counted */
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memalign_entry, __u64 align, __u64 size)
{
	use_task_stack(ctx);
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_MEMALIGN);
	if (st)
		st->size = size;
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(posix_memalign_entry, __u64 memptr, __u64 align, __u64 size)
{
	use_task_stack(ctx);
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_POSIX_MEMALIGN);
	if (st) {
		st->size = size;
		st->arg_ptr = memptr;
	}
	return 0;
}

/* realloc takes the old block out at entry: if realloc frees it and another
 * thread gets the same address before our return probe runs, that thread's
 * record must not be the one we delete. A failed realloc puts it back. */
static __always_inline int realloc_begin(struct pt_regs *ctx, __u64 ptr, __u64 size)
{
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_REALLOC);
	if (!st)
		return 0;
	st->size = size;
	st->arg_ptr = ptr;
	if (ptr) {
		__u32 tgid = current_tgid();
		struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
		struct memtop_alloc_val old;
		if (p && take_alloc(p, tgid, ptr, &old)) {
			st->old_found = 1;
			st->old_size = old.size;
			st->old_stack_id = old.stack_id;
		}
	}
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(realloc_entry, __u64 ptr, __u64 size)
{
	use_task_stack(ctx);
	return realloc_begin(ctx, ptr, size);
}

/* reallocarray(ptr, nmemb, size) is realloc(ptr, nmemb * size) that fails on
 * overflow; an overflowing product must not look like size 0 (a free). */
SEC("uprobe")
int BPF_KPROBE(reallocarray_entry, __u64 ptr, __u64 nmemb, __u64 size)
{
	use_task_stack(ctx);
	__u64 bytes = nmemb * size, n = nmemb;
	/* Opaque to clang, which would turn the check into __multi3. */
	asm volatile("" : "+r"(n));
	if (n && bytes / n != size)
		bytes = ~0ULL;
	return realloc_begin(ctx, ptr, bytes);
}

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
	struct memtop_alloc_val old;
	take_alloc(p, tgid, ptr, &old);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_return, __u64 ret)
{
	use_task_stack(ctx);
	struct call_state *st = thread_state(0);
	if (!st || !st->active)
		return 0;

	/* A call returns with sp one slot above its entry sp. */
	__u64 sp = PT_REGS_SP(ctx) - 8;
	__u32 tgid = current_tgid();
	if (st->kind == MEMTOP_KIND_NEW) {
		if (!st->adopt_sp || sp != st->adopt_sp)
			return 0;
		/* The allocation inside operator new returned: the block is new's,
		 * charged to new's caller with the size asked of new. On failure
		 * new retries or throws; either way this state is done. */
		st->active = 0;
		if (ret)
			record_alloc(tgid, ret, st->size, st->stack_id, &st->stack, 0);
		return 0;
	}
	if (sp != st->sp)
		return 0; /* a nested call returned */
	st->active = 0;

	__u64 addr = ret;

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
			 * the old block is still live: give it back its record. */
			if (st->size && st->old_found)
				record_alloc(tgid, st->arg_ptr, st->old_size, st->old_stack_id, NULL, 1);
			return 0;
		}
		break;
	default:
		if (!ret)
			return 0;
	}
	record_alloc(tgid, addr, st->size, st->stack_id, &st->stack, 0);
	return 0;
}

/* Lifecycle: tp_btf programs see the task directly, no tracefs needed. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct memtop_map_proc *mp = NULL;
#ifndef MEMTOP_COMPAT
	bpf_map_delete_elem(&vma_caches, &tgid); /* a new image, new mappings */
	mp = bpf_map_lookup_elem(&map_procs, &tgid);
#endif
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	/* Opaque to clang, which would test (p | mp). */
	asm volatile("" : "+r"(mp));
	if (!p && !mp)
		return 0;
	/* The old image's heap and mappings are gone; the event names both
	 * instances for user space to forget. */
	emit(MEMTOP_EV_EXEC, tgid, p, NULL, mp);
#ifndef MEMTOP_COMPAT
	if (mp)
		bpf_map_delete_elem(&map_procs, &tgid);
#endif
	if (!p)
		return 0;
	/* de_thread() has already killed the other threads, so nothing races
	 * with this reset. */
	p->epoch = NEW_EPOCH();
	p->heap_bytes = 0;
	p->heap_peak_bytes = 0;
	p->allocs_total = 0;
	p->frees_total = 0;
	bpf_get_current_comm(p->comm, sizeof(p->comm));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit, struct task_struct *task)
{
#ifdef MEMTOP_COMPAT
	__u32 tid = task->pid;
	bpf_map_delete_elem(&call_states, &tid);
#endif
	/* Only the last thread out ends the process. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	__u32 tgid = task->tgid;
#ifndef MEMTOP_COMPAT
	bpf_map_delete_elem(&vma_caches, &tgid);
#endif
	struct memtop_map_proc *mp = NULL;
#ifndef MEMTOP_COMPAT
	mp = bpf_map_lookup_elem(&map_procs, &tgid);
#endif
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	struct memtop_rss *r = bpf_map_lookup_elem(&rss, &tgid);
	/* Opaque to clang, which would test (p | r): pointer arithmetic the
	 * verifier refuses. */
	asm volatile("" : "+r"(r));
	asm volatile("" : "+r"(mp));
	if (!p && !r && !mp)
		return 0;
	emit(MEMTOP_EV_EXIT, tgid, p, r, mp);
	if (p)
		bpf_map_delete_elem(&procs, &tgid);
	if (r)
		bpf_map_delete_elem(&rss, &tgid);
#ifndef MEMTOP_COMPAT
	if (mp)
		bpf_map_delete_elem(&map_procs, &tgid);
#endif
	return 0;
}

/* mm_struct's counters before and after Linux 6.2 made them per-CPU. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));
struct mm_struct___new {
	struct percpu_counter rss_stat[4];
} __attribute__((preserve_access_index));

/*
 * The mm counters in pages: the values kmem:rss_stat itself reports. Since
 * 6.2 a counter is a percpu_counter and this is its folded part; each CPU
 * may hold up to a batch of pages not yet folded in, which /proc/PID/status
 * adds (41 pages apart here on a 2-CPU VM). Adding them needs per-CPU
 * offsets, reachable only through per-CPU ksyms (CONFIG_KALLSYMS_ALL).
 */
static __always_inline void mm_counters(struct mm_struct *mm, __s64 pages[4])
{
	/* One branch per layout, each with constant indexes: the relocations
	 * of the layout the kernel lacks stay in dead code. */
	if (bpf_core_field_exists(((struct mm_struct___old *)mm)->rss_stat)) {
		struct mm_struct___old *o = (void *)mm;
		pages[0] = BPF_CORE_READ(o, rss_stat.count[0].counter);
		pages[1] = BPF_CORE_READ(o, rss_stat.count[1].counter);
		pages[2] = BPF_CORE_READ(o, rss_stat.count[2].counter);
		pages[3] = BPF_CORE_READ(o, rss_stat.count[3].counter);
	} else {
		struct mm_struct___new *n = (void *)mm;
		pages[0] = BPF_CORE_READ(n, rss_stat[0].count);
		pages[1] = BPF_CORE_READ(n, rss_stat[1].count);
		pages[2] = BPF_CORE_READ(n, rss_stat[2].count);
		pages[3] = BPF_CORE_READ(n, rss_stat[3].count);
	}
}

#ifndef MEMTOP_COMPAT
/*
 * Which code grows resident memory: a user page fault on a page that is not
 * present maps a fresh page (first touch, or swap-in). Faults are sampled
 * per page with probability p = 1 - exp(-4096/T), the chance that a Poisson
 * process over bytes with mean interval T (--fault-sample) hits the page's
 * 4096 bytes; user space weights each sample by 4096/p bytes, so estimates
 * are unbiased. An unsampled fault costs one random number.
 */
const volatile __u32 fault_sample_threshold = 0; /* p * 2^32; 0: off */

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct memtop_stack);
} fault_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, struct memtop_agg_key);
	__type(value, struct memtop_growth_val);
} growth SEC(".maps");

SEC("tp_btf/page_fault_user")
int BPF_PROG(page_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	if (!fault_sample_threshold || (error_code & 1 /* X86_PF_PROT: page present */))
		return 0;
	if (fault_sample_threshold != ~0U && bpf_get_prandom_u32() >= fault_sample_threshold)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == self_tgid)
		return 0;
	if (traced_only && !bpf_map_lookup_elem(&procs, &tgid))
		return 0;
	struct memtop_stack *s = bpf_task_storage_get(&fault_stacks, bpf_get_current_task_btf(), 0,
	                                              BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s) {
		count(MEMTOP_CNT_STATE_BUSY);
		return 0;
	}
	/* Interrupts are off here: one bpf_find_vma (see vma_caches). */
	struct memtop_agg_key k = {.tgid = tgid, .epoch = 0};
	k.stack_id = walk_user_stack(s, regs->ip, regs->sp, regs->bp, tgid, STACK_AT_FAULT);
	store_stack(&k.stack_id, s, tgid, NULL);
	struct memtop_growth_val *g = bpf_map_lookup_elem(&growth, &k);
	if (!g) {
		struct memtop_growth_val zero = {};
		bpf_map_update_elem(&growth, &k, &zero, BPF_NOEXIST);
		g = bpf_map_lookup_elem(&growth, &k);
		if (!g) {
			count(MEMTOP_CNT_AGG_MAP_FULL);
			return 0;
		}
	}
	__sync_fetch_and_add(&g->samples, 1);
	return 0;
}

#include "mappings.h"
#endif

/* A process's resident-memory entry for address space `mm_id`, created at
 * first sight; NULL (and counted) when the map is full. Entries are keyed by
 * pid but hold the address space they describe: an entry found with another
 * one (the pid was reused, or the process exec'd and its new mm starts its
 * own peak, as VmHWM does) starts afresh instead of handing its numbers on. */
static __always_inline struct memtop_rss *rss_entry(__u32 tgid, __u32 mm_id)
{
	struct memtop_rss *r = bpf_map_lookup_elem(&rss, &tgid);
	if (r) {
		if (r->mm_id != mm_id) {
			for (int i = 0; i < 4; i++)
				r->bytes[i] = 0;
			r->peak_bytes = 0;
			r->events = 0;
			r->mm_id = mm_id;
		}
		return r;
	}
	struct memtop_rss fresh = {.mm_id = mm_id};
	bpf_map_update_elem(&rss, &tgid, &fresh, BPF_NOEXIST);
	r = bpf_map_lookup_elem(&rss, &tgid);
	if (!r)
		count(MEMTOP_CNT_RSS_MAP_FULL);
	return r;
}

#ifndef MEMTOP_COMPAT
/*
 * Exact resident memory on kernels whose counters are per-CPU (6.2+).
 *
 * rss_stat sees a counter's folded part; each CPU may hold up to a batch of
 * pages not yet folded in, which /proc/PID/status adds. Adding them needs
 * each CPU's per-CPU offset, and BPF gets those only through per-CPU ksyms
 * (CONFIG_KALLSYMS_ALL, which not every kernel has). memtop derives them
 * instead from a per-CPU array of its own: bpf_map_lookup_percpu_elem
 * (5.19) gives CPU i's copy of its value, and the array's per-CPU pointer
 * (bpf_array.pptrs[0], read with CO-RE) is that copy minus CPU i's offset.
 *
 * A task iterator, run by user space just before each report, writes every
 * process's exact counters into `rss` (and raises the peak with them). Per
 * report that is one pass over the processes, never work per page fault.
 */
const volatile __u32 nr_cpus = 0; /* possible CPUs; 0: counters are not per-CPU, or no way to sum them */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_offsets_probe SEC(".maps");

struct percpu_sum {
	__u64 base;        /* the probe array's per-CPU pointer */
	__u64 counters[4]; /* each counter's per-CPU pointer */
	__s64 sum[4];
};

static long percpu_sum_step(__u32 cpu, void *data)
{
	struct percpu_sum *ps = data;
	__u32 zero = 0;
	if (cpu >= nr_cpus)
		return 1;
	void *mine = bpf_map_lookup_percpu_elem(&cpu_offsets_probe, &zero, cpu);
	if (!mine)
		return 0;    /* a possible CPU that is not there */
	__u64 mine_addr = 0; /* as a number, like the map's address below */
	if (bpf_probe_read_kernel(&mine_addr, sizeof(mine_addr), &mine))
		return 0;
	__u64 off = mine_addr - ps->base;
	for (int k = 0; k < 4; k++) {
		__s32 v = 0;
		if (ps->counters[k] &&
		    bpf_probe_read_kernel(&v, sizeof(v), (void *)(ps->counters[k] + off)) == 0)
			ps->sum[k] += v;
	}
	return 0;
}

SEC("iter/task")
int rss_exact(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task || !nr_cpus || task->pid != task->tgid)
		return 0;
	struct mm_struct *mm = task->mm;
	if (!mm)
		return 0; /* a kernel thread, or exiting */
	/* Before 6.2 the counters are atomics: rss_stat's values are exact. */
	if (bpf_core_field_exists(((struct mm_struct___old *)mm)->rss_stat))
		return 0;
	struct mm_struct___new *n = (void *)mm;
	struct percpu_sum ps = {};
	/* The map's address as a number: the verifier allows no arithmetic on
	 * a map pointer, so it is copied out of the stack by a helper. */
	void *probe = &cpu_offsets_probe;
	__u64 probe_addr = 0;
	if (bpf_probe_read_kernel(&probe_addr, sizeof(probe_addr), &probe) ||
	    bpf_probe_read_kernel(&ps.base, sizeof(ps.base),
	                          (void *)(probe_addr + bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	ps.sum[0] = BPF_CORE_READ(n, rss_stat[0].count);
	ps.sum[1] = BPF_CORE_READ(n, rss_stat[1].count);
	ps.sum[2] = BPF_CORE_READ(n, rss_stat[2].count);
	ps.sum[3] = BPF_CORE_READ(n, rss_stat[3].count);
	ps.counters[0] = (__u64)BPF_CORE_READ(n, rss_stat[0].counters);
	ps.counters[1] = (__u64)BPF_CORE_READ(n, rss_stat[1].counters);
	ps.counters[2] = (__u64)BPF_CORE_READ(n, rss_stat[2].counters);
	ps.counters[3] = (__u64)BPF_CORE_READ(n, rss_stat[3].counters);
	bpf_loop(nr_cpus, percpu_sum_step, &ps, 0);

	struct memtop_rss *r =
	        rss_entry(task->tgid, mm_instance_id((__u64)BPF_CORE_READ(task, mm),
	                                             BPF_CORE_READ(task, group_leader, start_time)));
	if (!r)
		return 0;
	for (int k = 0; k < 4; k++)
		r->bytes[k] = ps.sum[k] > 0 ? ps.sum[k] << 12 : 0;
	raise_peak(&r->peak_bytes,
	           r->bytes[MEMTOP_RSS_FILE] + r->bytes[MEMTOP_RSS_ANON] + r->bytes[MEMTOP_RSS_SHMEM]);
	return 0;
}
#endif

/*
 * kmem:rss_stat fires whenever one of a process's resident-memory counters
 * changes. The BTF tracepoint hands over the mm itself: all four counters
 * are read here (the value the tracepoint prints), so every event leaves
 * the entry complete, and the
 * owner is found through mm->owner even when the event fires in another
 * task (fork copying pages, reclaim).
 */
SEC("tp_btf/rss_stat")
int BPF_PROG(rss_stat, struct mm_struct *mm, int member)
{
	struct task_struct *owner = NULL;
	if (bpf_core_field_exists(mm->owner))
		owner = BPF_CORE_READ(mm, owner);
	if (!owner) {
		struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
		if (BPF_CORE_READ(cur, mm) != mm)
			return 0;
		owner = cur;
	}
	/* An mm that is no longer its owner's (torn down after exit_mm or an
	 * exec, or by a late mmput elsewhere) belongs to no live process: its
	 * entry went with the exit event, and must not come back for the next
	 * process to get this pid. */
	/* Both as numbers, copied by helpers: the id below hashes the mm, and
	 * the verifier allows no arithmetic on the pointer itself. */
	__u64 owner_mm = (__u64)BPF_CORE_READ(owner, mm), mm_addr = 0;
	bpf_probe_read_kernel(&mm_addr, sizeof(mm_addr), &mm);
	if (owner_mm != mm_addr)
		return 0;
	__u32 tgid = BPF_CORE_READ(owner, tgid);

	struct memtop_rss *r =
	        rss_entry(tgid, mm_instance_id(owner_mm, BPF_CORE_READ(owner, group_leader, start_time)));
	if (!r)
		return 0;
	__s64 pages[4];
	mm_counters(mm, pages);
	for (int i = 0; i < 4; i++)
		r->bytes[i] = pages[i] > 0 ? pages[i] << 12 : 0; /* unfolded per-CPU parts can dip below 0 */
	__s64 resident = r->bytes[MEMTOP_RSS_FILE] + r->bytes[MEMTOP_RSS_ANON] + r->bytes[MEMTOP_RSS_SHMEM];
	r->events++;
	raise_peak(&r->peak_bytes, resident);
	return 0;
}
