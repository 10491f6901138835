/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mimalloc's heap API, its strings and in-place resizes, jemalloc's xallocx
 * and BSD's reallocf (mi_reallocf): the entry points only those allocators
 * define. Their programs are in their own object (mimalloc.bpf.c), which
 * memtop loads at the attach of the first file defining one of them: a
 * target whose files define none of these symbols (glibc's malloc, say)
 * pays neither their verification nor their instructions. That object is memtop's (memtop.bpf.c) plus this
 * header, and loads on the maps of the object already loaded (bpf_map__reuse_fd): the same maps, read-only
 * globals and per-thread state.
 *
 * The calls the shared programs (heap.h) make for these: a block allocated
 * while a heap memtop saw made is a thread's default (mi_heap_set_default)
 * gets that heap's tag (mi_tag); free and realloc take a block's tag out
 * (mi_untag), only in a process that made such a heap (memtop_proc.mi_heaps).
 * Everything else is here: the returns of these calls are this header's
 * (mi_finish_call, mi_alloc_return).
 *
 * mimalloc's heaps (mi_heap_new ... mi_heap_destroy). mi_heap_destroy frees
 * every block of a heap at once, with no free memtop sees, so each block
 * allocated from a heap memtop saw made (mi_heaps) carries a tag with that
 * heap (mi_blocks), and the destroy takes out the blocks whose tag names it.
 * A tag holds its block's birth time too: one left behind (a free memtop
 * missed) never names another block at the same address. mi_heap_delete
 * gives a heap's blocks to the thread's backing heap: their tags go. Heaps
 * made before memtop attached, and the backing heap (never destroyed), have
 * no tags. The destroy walks the tags with bpf_for_each_map_elem (Linux
 * 5.13); without it the heap API's programs do not load
 * (ProgramNeeds::MiHeaps). The full build only (no compat object).
 */
#ifndef MEMTOP_MIMALLOC_H
#define MEMTOP_MIMALLOC_H

#include "heap.h"

#define CALL_FREES_ON_FAILURE 1 /* reallocf: a failed call frees the old block */
#define CALL_RETURNS_SIZE     2 /* xallocx: returns the block's real size, not a pointer */

/* An in-place resize (mi_expand, xallocx) made the live block at addr `size`
 * bytes: the block stays what it was (stack, age, count), its bytes change.
 * Growth counts as allocated bytes in all; the block is not a new
 * allocation. */
static __always_inline void resize_block(__u32 tgid, __u64 addr, __u64 size)
{
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return;
	struct memtop_alloc_key k = {.tgid = tgid, .epoch = p->epoch, .addr = addr};
	struct memtop_alloc_val *v = bpf_map_lookup_elem(&allocs, &k);
	if (!v)
		return;
	__u64 old = v->size, stack_id = v->stack_id;
	if (old == size)
		return;
	v->size = size;
	/* Out of the old size's aggregate and into the new one's: the same
	 * one unless --sample keys aggregates by size. */
	charge(p, tgid, stack_id, old, -(__s64)old, -1, 0, 0, NULL);
	struct memtop_agg_key ak;
	agg_key(&ak, tgid, p, stack_id, size);
	struct memtop_agg_val *a = get_agg(&ak);
	charge(p, tgid, stack_id, size, (__s64)size, 1, 0, 0, a);
	if (a && size > old)
		__sync_fetch_and_add(&a->alloc_bytes_total, size - old);
	__s64 now = ADD_FETCH(&p->heap_bytes, (__s64)size - (__s64)old);
	raise_peak(&p->heap_peak_bytes, now);
}

/* The length + 1 of the string at s, as strdup allocates it; 0 when it
 * cannot be read or is longer than STR_CHUNKS * (STR_CHUNK - 1) bytes.
 * Taken from the block a strdup returns, which holds that string. */
#define STR_CHUNK  4096
#define STR_CHUNKS 256

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[STR_CHUNK]);
} str_buf SEC(".maps");

static __always_inline __u64 string_size(__u64 s)
{
	__u32 zero = 0;
	char *buf = bpf_map_lookup_elem(&str_buf, &zero);
	if (!buf)
		return 0;
	__u64 len = 0;
	for (int i = 0; i < STR_CHUNKS; i++) {
		long n = bpf_probe_read_user_str(buf, STR_CHUNK, (void *)(s + len));
		if (n <= 0)
			return 0;
		/* STR_CHUNK: cut short (its last byte is the NUL the helper
		 * wrote) or ending right there; the next read tells which. */
		if (n < STR_CHUNK)
			return len + n;
		len += STR_CHUNK - 1;
	}
	return 0; /* longer than 1 MiB: not counted (docs/limits.md) */
}

static __always_inline int mi_finish_call(struct pt_regs *ctx, __u64 ret);

struct mi_heap_end_ctx {
	__u32 tgid;
	__u32 epoch;
	__u64 heap;
	__u32 destroy;
	__u32 pad;
};

/* One tag of the walk: a block of the heap that ends. A destroy frees it
 * (if the tag is still that block's), a delete gives it to the backing
 * heap; either way the tag goes. */
static long mi_heap_block(struct bpf_map *map, struct memtop_alloc_key *key, struct memtop_mi_tag *t,
                          struct mi_heap_end_ctx *c)
{
	if (key->tgid != c->tgid || key->epoch != c->epoch || t->heap != c->heap)
		return 0;
	struct memtop_alloc_key k = *key;
	if (c->destroy) {
		__u32 tgid = k.tgid;
		struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
		struct memtop_alloc_val *v = bpf_map_lookup_elem(&allocs, &k);
		struct memtop_alloc_val old;
		if (p && v && v->birth_ns == t->birth_ns)
			take_alloc(p, tgid, k.addr, &old, 0);
	}
	bpf_map_delete_elem(&mi_blocks, &k);
	return 0;
}

/* Every tag of one heap of this process: walked in the thread that ends the
 * heap, in time proportional to the tags of all traced processes. */
static __always_inline void mi_heap_end(__u32 tgid, struct memtop_proc *p, __u64 heap, int destroy)
{
	struct mi_heap_end_ctx c = {.tgid = tgid, .epoch = p->epoch, .heap = heap, .destroy = destroy};
	bpf_for_each_map_elem(&mi_blocks, mi_heap_block, &c, 0);
}

/* mi_heap_new returned heap: blocks allocated from it get tags. A heap at
 * the same address that memtop still knows ended unseen (a thread's heaps
 * are deleted inside mimalloc when it exits): its blocks went to the
 * backing heap. */
static __always_inline void mi_heap_made(__u32 tgid, __u64 heap)
{
	struct memtop_proc *p = get_proc(tgid);
	if (!p)
		return;
	struct memtop_alloc_key hk = {.tgid = tgid, .epoch = p->epoch, .addr = heap};
	if (bpf_map_lookup_elem(&mi_heaps, &hk))
		mi_heap_end(tgid, p, heap, 0);
	__u64 one = 1;
	if (bpf_map_update_elem(&mi_heaps, &hk, &one, BPF_ANY))
		return;
	p->mi_heaps = 1;
}

/* mi_heap_destroy (destroy = 1) or mi_heap_delete of a heap memtop saw
 * made. mi_heap_destroy of the backing heap (or of one made before memtop
 * attached) jumps to mi_heap_delete, which does nothing for its blocks. */
static __always_inline void mi_heap_gone(__u64 heap, int destroy)
{
	__u32 tgid = current_tgid();
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p || !heap || !p->mi_heaps)
		return;
	struct memtop_alloc_key hk = {.tgid = tgid, .epoch = p->epoch, .addr = heap};
	if (bpf_map_delete_elem(&mi_heaps, &hk))
		return;
	/* mimalloc makes the backing heap the default again. */
	struct call_state *st = thread_state(0);
	if (st && st->mi_default_heap == heap)
		st->mi_default_heap = 0;
	mi_heap_end(tgid, p, heap, destroy);
}

SEC("uprobe")
int BPF_KPROBE(mi_heap_new_entry)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	/* Its own allocation of the heap (mi_heap_malloc, nested) is not
	 * counted, and neither is the free of it at the heap's end. */
	begin_call(ctx, MEMTOP_KIND_HEAP_NEW, 0, &want);
	return RETURN_WANTED(want);
}

SEC("uprobe")
int BPF_KPROBE(mi_heap_destroy_entry, __u64 heap)
{
	use_task_stack(ctx);
	mi_heap_gone(heap, 1);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(mi_heap_delete_entry, __u64 heap)
{
	use_task_stack(ctx);
	mi_heap_gone(heap, 0);
	return 0;
}

/* mi_heap_set_default(heap): malloc and the other plain calls of this
 * thread now allocate from heap. */
SEC("uprobe")
int BPF_KPROBE(mi_heap_set_default_entry, __u64 heap)
{
	use_task_stack(ctx);
	__u32 tgid = current_tgid();
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	struct call_state *st = thread_state(0);
	if (!p || !p->mi_heaps) {
		if (st)
			st->mi_default_heap = 0;
		return 0;
	}
	struct memtop_alloc_key hk = {.tgid = tgid, .epoch = p->epoch, .addr = heap};
	int known = heap && bpf_map_lookup_elem(&mi_heaps, &hk);
	if (!st && known)
		st = thread_state(1);
	if (st)
		st->mi_default_heap = known ? heap : 0;
	return 0;
}

/* mi_heap_malloc(heap, size) and the other calls with malloc's arguments
 * after the heap (zalloc, malloc_small, the aligned ones). */
SEC("uprobe")
int BPF_KPROBE(mi_heap_malloc_entry, __u64 heap, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_MALLOC, size, &want);
	if (st)
		st->heap = heap;
	return RETURN_WANTED(want);
}

SEC("uprobe")
int BPF_KPROBE(mi_heap_calloc_entry, __u64 heap, __u64 nmemb, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_CALLOC, nmemb * size, &want);
	if (st)
		st->heap = heap;
	return RETURN_WANTED(want);
}

SEC("uprobe")
int BPF_KPROBE(mi_heap_realloc_entry, __u64 heap, __u64 ptr, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	return realloc_begin(ctx, ptr, size, heap, 0);
}

SEC("uprobe")
int BPF_KPROBE(mi_heap_reallocf_entry, __u64 heap, __u64 ptr, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	return realloc_begin(ctx, ptr, size, heap, CALL_FREES_ON_FAILURE);
}

/* mi_heap_reallocn(heap, ptr, count, size), mi_heap_recalloc */
SEC("uprobe")
int BPF_KPROBE(mi_heap_reallocn_entry, __u64 heap, __u64 ptr, __u64 nmemb, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	return realloc_begin(ctx, ptr, array_bytes(nmemb, size), heap, 0);
}

/* mi_heap_strdup(heap, s), mi_heap_strndup(heap, s, n) */
SEC("uprobe")
int BPF_KPROBE(mi_heap_strdup_entry, __u64 heap)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_STRING, 0, &want);
	if (st)
		st->heap = heap;
	return RETURN_WANTED(want);
}

/* mi_heap_realpath(heap, name, resolved): with a buffer of the caller's it
 * allocates nothing. */
SEC("uprobe")
int BPF_KPROBE(mi_heap_realpath_entry, __u64 heap, __u64 name, __u64 resolved)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	if (resolved)
		return RETURN_WANTED(0);
	int want;
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_STRING, 0, &want);
	if (st)
		st->heap = heap;
	return RETURN_WANTED(want);
}

/* BSD's reallocf (mi_reallocf): a failed one frees the block. */
SEC("uprobe")
int BPF_KPROBE(reallocf_entry, __u64 ptr, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	return realloc_begin(ctx, ptr, size, 0, CALL_FREES_ON_FAILURE);
}

/* mi_strdup(s), mi_strndup(s, n): the block holds the string, whose length
 * + 1 is the size asked for; taken at the return. */
SEC("uprobe")
int BPF_KPROBE(strdup_entry)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	begin_call(ctx, MEMTOP_KIND_STRING, 0, &want);
	return RETURN_WANTED(want);
}

/* mi_realpath(name, resolved): a block only when resolved is NULL. */
SEC("uprobe")
int BPF_KPROBE(realpath_entry, __u64 name, __u64 resolved)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	if (resolved)
		return RETURN_WANTED(0);
	int want;
	begin_call(ctx, MEMTOP_KIND_STRING, 0, &want);
	return RETURN_WANTED(want);
}

/* mi_expand(ptr, size): the block, resized in place, or NULL. */
SEC("uprobe")
int BPF_KPROBE(expand_entry, __u64 ptr, __u64 size)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_EXPAND, size, &want);
	if (st)
		st->arg_ptr = ptr;
	return RETURN_WANTED(want);
}

/* jemalloc's xallocx(ptr, size, extra, flags): the block's real size after
 * resizing it in place, as far as it could. */
SEC("uprobe")
int BPF_KPROBE(xallocx_entry, __u64 ptr, __u64 size, __u64 extra)
{
	use_task_stack_alloc(ctx);
	if (session_return(ctx))
		return mi_finish_call(ctx, PT_REGS_RC(ctx));
	int want;
	struct call_state *st = begin_call(ctx, MEMTOP_KIND_EXPAND, size, &want);
	if (st) {
		st->arg_ptr = ptr;
		st->extra = extra;
		st->flags = CALL_RETURNS_SIZE;
	}
	return RETURN_WANTED(want);
}

/* finish_call for these calls: their own kinds, then the shared record. */
static __always_inline int mi_finish_call(struct pt_regs *ctx, __u64 ret)
{
	__u32 tgid = current_tgid();
	struct call_state *st = returning_call(ctx, ret, tgid);
	if (!st)
		return 0;
	switch (st->kind) {
	case MEMTOP_KIND_HEAP_NEW:
		if (ret)
			mi_heap_made(tgid, ret);
		return 0;
	case MEMTOP_KIND_EXPAND:
		/* mi_expand returns the block or NULL; xallocx the block's real
		 * size, at least size when it resized (up to size + extra: the
		 * bytes asked for). */
		if (st->flags & CALL_RETURNS_SIZE) {
			if (ret >= st->size) {
				__u64 want = st->size + st->extra < st->size ? ~0ULL : st->size + st->extra;
				resize_block(tgid, st->arg_ptr, ret < want ? ret : want);
			}
		} else if (ret) {
			resize_block(tgid, st->arg_ptr, st->size);
		}
		return 0;
	case MEMTOP_KIND_STRING:
		if (!ret)
			return 0;
		st->size = string_size(ret);
		if (!st->size)
			return 0;
		break;
	case MEMTOP_KIND_REALLOC:
		/* A failed reallocf freed the block: its record stays out. */
		if (!ret && (st->flags & CALL_FREES_ON_FAILURE))
			return 0;
		break;
	}
	return record_return(st, tgid, ret);
}

/* The return probe of these calls where the kernel has no sessions. */
SEC("uretprobe")
int BPF_KRETPROBE(mi_alloc_return, __u64 ret)
{
	use_task_stack(ctx);
	return mi_finish_call(ctx, ret);
}

#endif /* MEMTOP_MIMALLOC_H */
