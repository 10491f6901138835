/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python's object allocator (pymalloc) as a domain of its own, full build
 * only (docs/design.md, "Python's object allocator").
 *
 * On an LTO build (Debian 12's python3.11) pymalloc's body is inlined
 * wherever PyObject_Malloc/PyMem_Malloc/PyObject_Free are called: a check
 * that the allocator pointer is still pymalloc's own function, then the
 * free-list pop (or push). user/python/pymalloc_probes puts a uprobe on the
 * conditional jump after each such check and passes the site's "recipe" in
 * the probe's cookie (MEMTOP_PYM_*): where the size (or block) is, and
 * where pymalloc's `usedpools` array is. One trap per object.
 *
 *   malloc site, check passed (ZF set): size s; 1 <= s <= 512 is pymalloc's;
 *     the block it will pop is usedpools[2 * ((s - 1) >> 4)]->freeblock
 *     (the GIL holder is the only thread in pymalloc, so nothing races the
 *     read); an empty pool instead leaves the block to
 *     allocate_from_new_pool(), whose return (py_new_pool_return) records
 *     it. s == 0 or s > 512 goes on to PyMem_RawMalloc, i.e. glibc's
 *     malloc: native heap, counted there once.
 *   malloc site, check failed (a hook such as tracemalloc is installed):
 *     nothing here; the hook calls pymalloc's own function, whose entry
 *     probe (MEMTOP_PYM_MALLOC_FN) does what the site would have done.
 *   free site / free function: the block leaves py_allocs if it is there
 *     (a raw block, > 512 bytes, was never in it: glibc's free counts it).
 *
 * Kept apart from the native heap: py_allocs, py_aggs and the py_* fields
 * of the process record, so a process's heap and its Python domain are
 * each counted once.
 */
#ifndef MEMTOP_PYMALLOC_H
#define MEMTOP_PYMALLOC_H

#include "heap.h"

#ifndef MEMTOP_COMPAT

/* A site whose pool was empty: the size and stack wait for
 * allocate_from_new_pool's return, on this thread. */
struct py_pending {
	__u64 size;
	__u64 stack_id;
	__u64 sampled; /* sampled (py_sample_bytes), not counted: weighed by user space */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct py_pending);
} py_pendings SEC(".maps");

#define PYM_ZF 0x40 /* eflags' zero flag: the check compared equal */

/* A register of the recipe (MEMTOP_PYM_REG_*), as the trap saw it. Every
 * register is read at its constant offset: the verifier refuses a context
 * read at a variable one (which a switch compiles to). */
static __always_inline __u64 pym_reg(struct pt_regs *ctx, __u32 r)
{
	__u64 v[16] = {0,       ctx->ax, ctx->bx,  ctx->cx,  ctx->dx,  ctx->si,  ctx->di,  ctx->bp,
	               ctx->r8, ctx->r9, ctx->r10, ctx->r11, ctx->r12, ctx->r13, ctx->r14, ctx->r15};
	return v[r & 15];
}

/* The recipe's value: an immediate, or a register. */
static __always_inline __u64 pym_value(struct pt_regs *ctx, __u64 cookie)
{
	__u32 reg = MEMTOP_PYM_COOKIE_REG(cookie);
	return reg ? pym_reg(ctx, reg) : MEMTOP_PYM_COOKIE_IMM(cookie);
}

/* The stack at the trap (mid-function: the registers are exact), with the
 * thread's Python frames, stored; its id. */
static __always_inline __u64 pym_stack(struct pt_regs *ctx, __u32 tgid, struct memtop_proc *p,
                                       struct call_state *st)
{
	/* An allocator call in flight owns the thread's stack buffer (a hook
	 * between the inlined check and malloc): not walked. */
	if (!st || st->active)
		return MEMTOP_STACK_LOST;
	__u64 id = walk_user_stack(&st->stack, ctx->ip, ctx->sp, ctx->bp, tgid, STACK_AT_SYSCALL, NULL);
	if (python_process(st, tgid))
		id = python_frames(id, tgid);
	store_stack(&id, &st->stack, tgid, p);
	return id;
}

/* A pymalloc allocation of `size` about to happen on this thread: recorded
 * with the block it will get. Under py_sample_bytes only a sampled one:
 * an unsampled object costs the thread-state lookup and a subtraction (no
 * pool read, no walk, no map operation), and its free one failed lookup in
 * py_allocs. Blocks beneath (over 512 bytes, glibc's) stay exact: a
 * PyMem_Realloc of one reaches glibc's realloc with no site of its own to
 * say it is Python's, so an unrecorded one would move into the heap there. */
static __always_inline void py_malloc(struct pt_regs *ctx, __u64 cookie, __u64 size)
{
	if (size - 1 >= MEMTOP_PYM_SMALL_MAX) {
		/* 0 or > 512: PyMem_RawMalloc, i.e. glibc's malloc, which adopts
		 * the block into this domain (heap.h). Size 0 (malloc(1)) stays
		 * native. */
		struct call_state *st = thread_state(1);
		if (size && st && !st->active)
			st->py_adopt = 1;
		return;
	}
	__u32 tgid = current_tgid();
	if (tgid == self_tgid)
		return;
	if (cgroup_filter && bpf_current_task_under_cgroup(&target_cgroup, 0) != 1)
		return;
	struct call_state *st = thread_state(1);
	int sampled = 0;
	if (py_sample_bytes) {
		if (!st || !sample_py_object(st, size))
			return;
		sampled = 1;
	}
	__u64 usedpools = MEMTOP_PYM_COOKIE_POOLS(cookie);
	__u64 pool = 0, next = 0, block = 0;
	if (bpf_probe_read_user(&pool, sizeof(pool), (void *)(usedpools + 16 * ((size - 1) >> 4))) || !pool ||
	    bpf_probe_read_user(&next, sizeof(next), (void *)(pool + 16))) {
		count(MEMTOP_CNT_PY_UNREAD);
		return;
	}
	struct memtop_proc *p = get_proc(tgid);
	if (!p)
		return;
	__u64 stack_id = pym_stack(ctx, tgid, p, st);
	if (pool == next) {
		/* No pool of this size class has a free block: allocate_from_new_pool
		 * carves one, and its return says where. */
		struct py_pending *pend = bpf_task_storage_get(&py_pendings, bpf_get_current_task_btf(), 0,
		                                               BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (pend) {
			pend->size = size;
			pend->stack_id = stack_id;
			pend->sampled = sampled;
		}
		return;
	}
	if (bpf_probe_read_user(&block, sizeof(block), (void *)(pool + 8)) || !block) {
		count(MEMTOP_CNT_PY_UNREAD);
		return;
	}
	py_record_as(tgid, block, size, stack_id, sampled);
}

SEC("uprobe")
int BPF_KPROBE(py_site)
{
	use_task_stack(ctx);
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 kind = MEMTOP_PYM_COOKIE_KIND(cookie);
	switch (kind) {
	case MEMTOP_PYM_MALLOC_SITE:
		if (ctx->flags & PYM_ZF)
			py_malloc(ctx, cookie, pym_value(ctx, cookie));
		break;
	case MEMTOP_PYM_MALLOC_FN:
		py_malloc(ctx, cookie, ctx->si);
		break;
	case MEMTOP_PYM_FREE_SITE:
		if (ctx->flags & PYM_ZF)
			py_forget(current_tgid(), pym_value(ctx, cookie));
		break;
	case MEMTOP_PYM_FREE_FN:
		py_forget(current_tgid(), ctx->si);
		break;
	}
	return 0;
}

/* allocate_from_new_pool's return: the block of the site that found its
 * size class's pools full. Where uprobe sessions exist (6.13+) this program
 * is attached as one at the function's entry too (user/kernel/programs.h,
 * session_entry): there it asks for the return only when a site left a
 * size waiting on this thread, so an unsampled object's new pool takes no
 * return trap. Elsewhere it is a return probe. */
SEC("uprobe")
int BPF_KPROBE(py_new_pool_return)
{
	use_task_stack_alloc(ctx);
	int at_entry = uprobe_session && !session_return(ctx);
	struct py_pending *pend = bpf_task_storage_get(&py_pendings, bpf_get_current_task_btf(), 0, 0);
	if (!pend || !pend->size)
		return 1; /* at entry: no return trap */
	if (at_entry)
		return 0;
	__u64 size = pend->size, stack_id = pend->stack_id;
	pend->size = 0;
	py_record_as(current_tgid(), PT_REGS_RC(ctx), size, stack_id, pend->sampled);
	return 0;
}

/*
 * --python-objects --sample N -- CMD: the preloaded sampler samples
 * Python's object allocator in-process (user/sampler/sampler.c, "CPython's
 * object allocator") and calls these two points for its sampled objects
 * only; pymalloc's sites are not probed then, so an unsampled object takes
 * no trap. The same shape as the native heap's sampled_alloc_entry and
 * sampled_free_entry (heap.h), recorded in this domain with the object's
 * size in its aggregate's key: user space weighs it by 1/p(size).
 *
 * memtop_sampled_py_alloc(ptr, size, ret, sp, fp, dropped): ret, sp, fp of
 * the hook's caller (the code that asked Python's allocator), for the walk.
 */

/* Apart from the walk, as sampled_record: Linux 6.1's verifier counts a
 * subprogram's frame apart from its caller's only when it is not inlined. */
static __noinline int py_sampled_record(__u32 tgid, __u64 ptr, __u64 size)
{
	struct call_state *st = thread_state(0);
	if (!st)
		return 0;
	struct memtop_proc *p = get_proc(tgid);
	if (!p)
		return 0;
	__u64 id = st->stack_id;
	store_stack(&id, &st->stack, tgid, p);
	if (st->stack.flags & MEMTOP_STACK_TRUNCATED)
		count(MEMTOP_CNT_STACK_TRUNCATED);
	py_record_as(tgid, ptr, size, id, 1);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(py_sampled_alloc_entry, __u64 ptr, __u64 size, __u64 ret, __u64 sp, __u64 fp)
{
	use_task_stack(ctx);
	__u32 tgid = current_tgid();
	if (tgid == self_tgid || !ptr)
		return 0;
	sampler_dropped(ctx->r9);
	if (!sampled_walk(tgid, ret, sp, fp))
		return 0;
	return py_sampled_record(tgid, ptr, size);
}

/* memtop_sampled_py_free(ptr, dropped): a sampled object is being freed.
 * Two values of ptr that are never objects carry messages of the
 * Python-only sampler (libmemtop_pysampler.so: the native heap is traced
 * exactly by the probes, the Python domain sampled in-process):
 *   MEMTOP_PY_MSG_RAW: this thread's next outermost malloc, calloc or
 *     realloc is pymalloc's PyMem_Raw* call for a Python block (over 512
 *     bytes): the Python domain's, so not the heap's (heap.h, py_adopt);
 *   MEMTOP_PY_MSG_HOOKS_LOST: CPython replaced the sampler's hooks (its
 *     debug hooks, PYTHONMALLOC): this process's domain is incomplete. */
SEC("uprobe")
int BPF_KPROBE(py_sampled_free_entry, __u64 ptr, __u64 dropped)
{
	use_task_stack(ctx);
	__u32 tgid = current_tgid();
	if (tgid == self_tgid)
		return 0;
	sampler_dropped(dropped);
	if (ptr == MEMTOP_PY_MSG_RAW) {
		struct call_state *st = thread_state(1);
		if (st && !st->active)
			st->py_adopt = PY_ADOPT_DROP;
		return 0;
	}
	if (ptr == MEMTOP_PY_MSG_HOOKS_LOST) {
		emit_stack_event(MEMTOP_EV_PY_HOOKS_LOST, tgid, 0, 0, 0);
		return 0;
	}
	py_forget(tgid, ptr);
	return 0;
}

#endif /* MEMTOP_COMPAT */

#endif /* MEMTOP_PYMALLOC_H */
