/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python's object-allocator domain: its records and aggregates, apart from
 * the heap's (bpf/pymalloc.h has the probes). Included by heap.h, whose
 * malloc, realloc and free also serve the domain: a block over 512 bytes
 * asked of Python's allocator goes on to glibc's malloc, and is adopted into
 * the domain there (call_state's py_adopt), so it is counted once, here.
 * Full build only.
 */
#ifndef MEMTOP_PYMALLOC_DOMAIN_H
#define MEMTOP_PYMALLOC_DOMAIN_H

#include "common.h"

#ifndef MEMTOP_COMPAT

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 21);
	__type(key, struct memtop_alloc_key);
	__type(value, struct memtop_alloc_val);
} py_allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 17);
	__type(key, struct memtop_agg_key);
	__type(value, struct memtop_agg_val);
} py_aggs SEC(".maps");

static __always_inline struct memtop_proc *get_proc(__u32 tgid);

/* A record's aggregate key size: 0 for a counted object; its size for one
 * the in-process sampler sampled (MEMTOP_PY_SAMPLED), which user space
 * weighs by its size's sampling probability as the heap's (model/sampling.h). */
static __always_inline __u64 py_agg_size(const struct memtop_alloc_val *v)
{
	return v->birth_ns == MEMTOP_PY_SAMPLED ? v->size : 0;
}

/* sampled: the object was sampled in-process (bpf/pymalloc.h), not counted. */
static __always_inline void py_record_as(__u32 tgid, __u64 addr, __u64 size, __u64 stack_id, int sampled)
{
	struct memtop_proc *p = get_proc(tgid);
	if (!p || !addr)
		return;
	struct memtop_alloc_key k = {.tgid = tgid, .epoch = p->epoch, .addr = addr};
	struct memtop_alloc_val v = {
	        .size = size, .stack_id = stack_id, .birth_ns = sampled ? MEMTOP_PY_SAMPLED : 0};
	struct memtop_alloc_val *old = bpf_map_lookup_elem(&py_allocs, &k);
	if (old) {
		/* Handed out again without a free seen (an in-place realloc, or a
		 * free memtop did not see): the old block is gone. */
		struct memtop_agg_key ok = {
		        .tgid = tgid, .epoch = p->epoch, .stack_id = old->stack_id, .size = py_agg_size(old)};
		struct memtop_agg_val *oa = bpf_map_lookup_elem(&py_aggs, &ok);
		if (oa) {
			__sync_fetch_and_add(&oa->bytes, -(__s64)old->size);
			__sync_fetch_and_add(&oa->allocs, -1);
		}
		__sync_fetch_and_add(&p->py_bytes, -(__s64)old->size);
		__sync_fetch_and_add(&p->py_frees_total, 1);
	}
	if (bpf_map_update_elem(&py_allocs, &k, &v, BPF_ANY)) {
		count(MEMTOP_CNT_ALLOC_MAP_FULL);
		return;
	}
	struct memtop_agg_key ak = {
	        .tgid = tgid, .epoch = p->epoch, .stack_id = stack_id, .size = py_agg_size(&v)};
	struct memtop_agg_val *a = bpf_map_lookup_elem(&py_aggs, &ak);
	if (!a) {
		struct memtop_agg_val zero = {};
		bpf_map_update_elem(&py_aggs, &ak, &zero, BPF_NOEXIST);
		a = bpf_map_lookup_elem(&py_aggs, &ak);
	}
	if (a) {
		__sync_fetch_and_add(&a->bytes, size);
		__sync_fetch_and_add(&a->allocs, 1);
		__sync_fetch_and_add(&a->alloc_bytes_total, size);
		__sync_fetch_and_add(&a->allocs_total, 1);
	} else {
		count(MEMTOP_CNT_AGG_MAP_FULL);
	}
	__s64 now = ADD_FETCH(&p->py_bytes, (__s64)size);
	__sync_fetch_and_add(&p->py_allocs_total, 1);
	raise_peak(&p->py_peak_bytes, now);
}

static __always_inline void py_record(__u32 tgid, __u64 addr, __u64 size, __u64 stack_id)
{
	py_record_as(tgid, addr, size, stack_id, 0);
}

/* Takes block addr out of the domain; 1 if it was there (*out: its record). */
static __always_inline int py_take(__u32 tgid, __u64 addr, struct memtop_alloc_val *out)
{
	struct memtop_proc *p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p || !addr)
		return 0;
	struct memtop_alloc_key k = {.tgid = tgid, .epoch = p->epoch, .addr = addr};
	struct memtop_alloc_val *v = bpf_map_lookup_elem(&py_allocs, &k);
	if (!v)
		return 0;
	struct memtop_alloc_val old = *v;
	if (bpf_map_delete_elem(&py_allocs, &k))
		return 0; /* a racing free of the same block accounts for it */
	*out = old;
	struct memtop_agg_key ak = {
	        .tgid = tgid, .epoch = p->epoch, .stack_id = old.stack_id, .size = py_agg_size(&old)};
	struct memtop_agg_val *a = bpf_map_lookup_elem(&py_aggs, &ak);
	if (a) {
		__sync_fetch_and_add(&a->bytes, -(__s64)old.size);
		__sync_fetch_and_add(&a->allocs, -1);
	}
	__sync_fetch_and_add(&p->py_bytes, -(__s64)old.size);
	__sync_fetch_and_add(&p->py_frees_total, 1);
	return 1;
}

static __always_inline void py_forget(__u32 tgid, __u64 addr)
{
	struct memtop_alloc_val old;
	py_take(tgid, addr, &old);
}

#endif /* MEMTOP_COMPAT */

#endif /* MEMTOP_PYMALLOC_DOMAIN_H */
