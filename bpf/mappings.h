/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Anonymous memory mapped outside malloc: mmap, munmap, mremap and brk, per
 * process and per stack (full build only).
 *
 * Syscall tracepoints (syscalls:sys_{enter,exit}_*) fire for these four
 * calls alone, so a host pays nothing on its other syscalls. The stack is
 * walked from the registers the thread entered the kernel with
 * (bpf_task_pt_regs, Linux 5.15), so frame 0 is the instruction after the
 * `syscall` in libc's wrapper.
 *
 * Each mapping made while memtop watches is a record keyed by its start,
 * with a second index by its end, so that the ways programs give memory back
 * are all found with two hash lookups: a whole mapping or several in a row
 * (munmap at the start), a head or a tail trimmed (glibc's arena alignment,
 * brk shrinking), MAP_FIXED over a mapping, mremap moving or resizing it. A
 * hole punched in the middle of a mapping is not found: the mapping keeps
 * its bytes until its start or its end goes (README, "What is counted").
 *
 * Only mappings that can hold data count (prot != PROT_NONE): reservations
 * are address space, not memory. Address space reserved and later made
 * accessible with mprotect (glibc's per-thread arenas) is not followed; a
 * runtime that commits with mmap(MAP_FIXED) over its reservation (Go, the
 * JVM) is.
 *
 * These programs need no use_task_stack(): syscall tracepoints run BPF with
 * preemption disabled, also since they may take page faults (6.13 added
 * the guard for that), so no second run can share a private stack. (A tail
 * call could not be used anyway: a prog array serves one program type.)
 *
 * Records are keyed by (tgid, mm_id): mm_id names one address space of one
 * process (the mm and the process's start time), so exec and pid reuse
 * never mix two images' mappings. User space deletes an ended instance's
 * records (Tracer::forget) after the exit or exec event that names it.
 */

#ifndef MEMTOP_MAPPINGS_H
#define MEMTOP_MAPPINGS_H

#ifdef MEMTOP_COMPAT
#error "mappings.h is for the full build: Linux 5.10 has no bpf_task_pt_regs"
#endif

#include "common.h"
#include "stack.h"

#define MAP_PAGE_ALIGN(x)   (((x) + 4095) & ~4095ULL)
#define MM_PROT_NONE        0
#define MM_MAP_FIXED        0x10
#define MM_MAP_ANONYMOUS    0x20
#define MM_MREMAP_FIXED     2
#define MM_MREMAP_DONTUNMAP 4

/* Per process, keyed by tgid: what is mapped now, its peak, and whose address
 * space (mm_id) that is. Ended by lifecycle.h. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 14);
	__type(key, __u32);
	__type(value, struct memtop_map_proc);
} map_procs SEC(".maps");

/* The loader sizes these (--max-mappings). Allocated as used, not up front:
 * mappings are few next to allocations, and mmap is not a hot path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 17);
	__type(key, struct memtop_alloc_key);   /* addr: start */
	__type(value, struct memtop_alloc_val); /* size: length */
} mapped SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 17);
	__type(key, struct memtop_alloc_key); /* addr: end */
	__type(value, __u64);                 /* start */
} mapped_ends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, struct memtop_agg_key); /* epoch: mm_id */
	__type(value, struct memtop_agg_val);
} mapped_aggs SEC(".maps");

/* Between brk's entry and its exit: where the break was. */
struct sys_state {
	__u64 old_brk;
	struct memtop_stack stack;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sys_state);
} sys_states SEC(".maps");

/* This process's totals, started afresh when its address space is not the
 * one recorded (an exec or a reused pid whose end we did not see). */
static __always_inline struct memtop_map_proc *map_proc(__u32 tgid, __u32 mm_id, int create)
{
	struct memtop_map_proc *mp = bpf_map_lookup_elem(&map_procs, &tgid);
	if (mp) {
		if (mp->mm_id != mm_id) {
			if (!create)
				return NULL;
			mp->mm_id = mm_id;
			mp->bytes = 0;
			mp->peak_bytes = 0;
			mp->maps_total = 0;
		}
		return mp;
	}
	if (!create)
		return NULL;
	struct memtop_map_proc fresh = {.mm_id = mm_id};
	bpf_map_update_elem(&map_procs, &tgid, &fresh, BPF_NOEXIST);
	mp = bpf_map_lookup_elem(&map_procs, &tgid);
	if (!mp)
		count(MEMTOP_CNT_PROC_MAP_FULL);
	return mp;
}

/* The value a new aggregate starts from, read from .rodata rather than built
 * on the stack: mmap_exit's four nested calls stay under the 512-byte stack
 * that Linux 6.1's verifier allows them together (it refused 544). */
static const struct memtop_agg_val zero_mapped_agg;

static __always_inline void map_charge(struct memtop_map_proc *mp, __u32 tgid, __u64 stack_id, __s64 bytes,
                                       __s64 nmaps)
{
	struct memtop_agg_key k = {.tgid = tgid, .epoch = mp->mm_id, .stack_id = stack_id};
	struct memtop_agg_val *a = bpf_map_lookup_elem(&mapped_aggs, &k);
	if (!a) {
		bpf_map_update_elem(&mapped_aggs, &k, &zero_mapped_agg, BPF_NOEXIST);
		a = bpf_map_lookup_elem(&mapped_aggs, &k);
	}
	if (a) {
		__sync_fetch_and_add(&a->bytes, bytes);
		__sync_fetch_and_add(&a->allocs, nmaps);
		if (bytes > 0 && nmaps > 0) {
			__sync_fetch_and_add(&a->alloc_bytes_total, bytes);
			__sync_fetch_and_add(&a->allocs_total, 1);
		}
	} else {
		count(MEMTOP_CNT_AGG_MAP_FULL);
	}
	__s64 now = ADD_FETCH(&mp->bytes, bytes);
	/* Only a new mapping raises the peak: unmap_range() always takes bytes
	 * out. nmaps is a constant at every call, so the removals, four per
	 * unmap_range() and up to three of those per program, carry no
	 * compare-and-swap loop for the verifier to walk. */
	if (nmaps > 0 && bytes > 0) {
		__sync_fetch_and_add(&mp->maps_total, 1);
		raise_peak(&mp->peak_bytes, now);
	}
}

/*
 * [start, start + len) is no longer mapped: takes it out of the records it
 * covers. Walks forward from the start (whole records, then a head trim) and
 * back from the end (whole records, then a tail trim). Returns the bytes
 * taken out.
 */
/* Not inlined: its records and keys then live in a frame of their own, off
 * the call chain of the stack walk that follows in mmap_exit and
 * mremap_exit, whose combined stack Linux 6.1's verifier caps at 512 bytes. */
static __noinline __s64 unmap_range(struct memtop_map_proc *mp, __u32 tgid, __u64 start, __u64 len)
{
	__u64 end = start + len;
	__s64 taken = 0;
	struct memtop_alloc_key k = {.tgid = tgid, .epoch = mp->mm_id};

	for (int i = 0; i < 8 && start < end; i++) {
		k.addr = start;
		struct memtop_alloc_val *rec = bpf_map_lookup_elem(&mapped, &k);
		if (rec) {
			struct memtop_alloc_val r = *rec;
			__u64 rend = start + r.size;
			if (bpf_map_delete_elem(&mapped, &k))
				break; /* another thread's munmap took it */
			k.addr = rend;
			bpf_map_delete_elem(&mapped_ends, &k);
			if (rend <= end) {
				map_charge(mp, tgid, r.stack_id, -(__s64)r.size, -1);
				taken += r.size;
				start = rend;
				continue;
			}
			/* Head trimmed: [end, rend) stays. */
			struct memtop_alloc_val rest = {.size = rend - end, .stack_id = r.stack_id};
			k.addr = end;
			bpf_map_update_elem(&mapped, &k, &rest, BPF_ANY);
			__u64 rest_start = end;
			k.addr = rend;
			bpf_map_update_elem(&mapped_ends, &k, &rest_start, BPF_ANY);
			map_charge(mp, tgid, r.stack_id, -(__s64)(end - start), 0);
			taken += end - start;
			break;
		}
		k.addr = end;
		__u64 *rs = bpf_map_lookup_elem(&mapped_ends, &k);
		if (!rs)
			break; /* nothing recorded starts at start or ends at end */
		__u64 rstart = *rs;
		k.addr = rstart;
		rec = bpf_map_lookup_elem(&mapped, &k);
		if (!rec || rstart + rec->size != end) {
			k.addr = end;
			bpf_map_delete_elem(&mapped_ends, &k); /* stale index entry */
			break;
		}
		struct memtop_alloc_val r = *rec;
		if (rstart >= start) {
			/* A whole record at the end of the range. */
			if (bpf_map_delete_elem(&mapped, &k))
				break;
			k.addr = end;
			bpf_map_delete_elem(&mapped_ends, &k);
			map_charge(mp, tgid, r.stack_id, -(__s64)r.size, -1);
			taken += r.size;
			end = rstart;
			continue;
		}
		/* Tail trimmed: [rstart, start) stays. */
		rec->size = start - rstart;
		k.addr = end;
		bpf_map_delete_elem(&mapped_ends, &k);
		k.addr = start;
		bpf_map_update_elem(&mapped_ends, &k, &rstart, BPF_ANY);
		map_charge(mp, tgid, r.stack_id, -(__s64)(end - start), 0);
		taken += end - start;
		break;
	}
	return taken;
}

static __always_inline void add_mapping(struct memtop_map_proc *mp, __u32 tgid, __u64 start, __u64 len,
                                        __u64 stack_id)
{
	struct memtop_alloc_key k = {.tgid = tgid, .epoch = mp->mm_id, .addr = start};
	struct memtop_alloc_val v = {.size = len, .stack_id = stack_id};
	long err = bpf_map_update_elem(&mapped, &k, &v, BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		/* A record of memory unmapped in a way we did not see. */
		unmap_range(mp, tgid, start, len);
		err = bpf_map_update_elem(&mapped, &k, &v, BPF_NOEXIST);
	}
	if (err) {
		count(MEMTOP_CNT_MAPPING_MAP_FULL);
		return;
	}
	k.addr = start + len;
	if (bpf_map_update_elem(&mapped_ends, &k, &start, BPF_ANY)) {
		k.addr = start;
		bpf_map_delete_elem(&mapped, &k);
		count(MEMTOP_CNT_MAPPING_MAP_FULL);
		return;
	}
	map_charge(mp, tgid, stack_id, (__s64)len, 1);
}

/* Whose mappings are recorded: not memtop's, and with a target only the
 * targets' and the heap-traced processes'. */
static __always_inline int mapping_traced(__u32 tgid)
{
	if (tgid == self_tgid)
		return 0;
	return !traced_only || target_process(tgid);
}

/*
 * The stack that made a mapping, walked into the thread's sys_state and
 * stored; MEMTOP_STACK_LOST if it cannot be.
 *
 * Inlined. As a BPF-to-BPF call its frame adds up with the program's and the
 * unwinder's, and Linux 6.1 refuses mmap_exit: "combined stack size of 5
 * calls is 544. Too large" (the limit is 512).
 */
static __always_inline __u64 store_syscall_stack(struct sys_state *st, struct pt_regs *regs, __u32 tgid)
{
	__u64 id = walk_user_stack(&st->stack, regs->ip, regs->sp, regs->bp, tgid, STACK_AT_SYSCALL, NULL);
	store_stack(&id, &st->stack, tgid, NULL);
	return id;
}

static __always_inline __u64 syscall_stack(struct task_struct *t, struct pt_regs *regs, __u32 tgid)
{
	struct sys_state *st = bpf_task_storage_get(&sys_states, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		count(MEMTOP_CNT_STATE_BUSY);
		return MEMTOP_STACK_LOST;
	}
	return store_syscall_stack(st, regs, tgid);
}

static __always_inline int syscall_failed(long ret)
{
	return ret < 0 && ret >= -4095;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int mmap_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (syscall_failed(ret) || !mapping_traced(tgid))
		return 0;
	/* The arguments are still in the registers the syscall came with. */
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	__u64 len = MAP_PAGE_ALIGN(regs->si), prot = regs->dx, flags = regs->r10;
	int anon = (flags & MM_MAP_ANONYMOUS) && prot != MM_PROT_NONE;
	__u32 mm_id = current_mm_id(t);
	struct memtop_map_proc *mp = map_proc(tgid, mm_id, anon);
	if (!mp)
		return 0;
	if (flags & MM_MAP_FIXED)
		unmap_range(mp, tgid, ret, len); /* replaced what was there */
	if (anon)
		add_mapping(mp, tgid, ret, len, syscall_stack(t, regs, tgid));
	return 0;
}

/* At entry: once the range is unmapped, another thread may map the same
 * addresses, and its record must not be the one deleted. munmap fails only
 * on arguments checked here. */
SEC("tracepoint/syscalls/sys_enter_munmap")
int munmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 addr = ctx->args[0], len = MAP_PAGE_ALIGN(ctx->args[1]);
	if ((addr & 4095) || !len)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct memtop_map_proc *mp = map_proc(tgid, current_mm_id(bpf_get_current_task_btf()), 0);
	if (mp)
		unmap_range(mp, tgid, addr, len);
	return 0;
}

/* The new mapping is charged to mremap's caller, as a realloc is. Only a
 * recorded mapping is followed: mremap of a file mapping stays one. */
SEC("tracepoint/syscalls/sys_exit_mremap")
int mremap_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (syscall_failed(ret) || !mapping_traced(tgid))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	__u64 old = regs->di, old_len = MAP_PAGE_ALIGN(regs->si), new_len = MAP_PAGE_ALIGN(regs->dx);
	__u64 flags = regs->r10;
	struct memtop_map_proc *mp = map_proc(tgid, current_mm_id(t), 0);
	if (!mp)
		return 0;
	if (flags & MM_MREMAP_FIXED)
		unmap_range(mp, tgid, ret, new_len);
	if (!old_len || (flags & MM_MREMAP_DONTUNMAP))
		return 0; /* the old range stays mapped */
	if (unmap_range(mp, tgid, old, old_len) > 0)
		add_mapping(mp, tgid, ret, new_len, syscall_stack(t, regs, tgid));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_brk")
int brk_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!mapping_traced(tgid))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct sys_state *st = bpf_task_storage_get(&sys_states, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		count(MEMTOP_CNT_STATE_BUSY);
		return 0;
	}
	st->old_brk = BPF_CORE_READ(t, mm, brk);
	return 0;
}

/* brk returns the new break (the old one when it fails). The heap is the
 * pages up to the break, a record per growth. */
SEC("tracepoint/syscalls/sys_exit_brk")
int brk_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!mapping_traced(tgid))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct sys_state *st = bpf_task_storage_get(&sys_states, t, 0, 0);
	if (!st || !st->old_brk)
		return 0;
	__u64 from = MAP_PAGE_ALIGN(st->old_brk), to = MAP_PAGE_ALIGN((__u64)ctx->ret);
	st->old_brk = 0;
	if (from == to)
		return 0;
	struct memtop_map_proc *mp = map_proc(tgid, current_mm_id(t), to > from);
	if (!mp)
		return 0;
	if (to > from)
		add_mapping(mp, tgid, from, to - from,
		            store_syscall_stack(st, (struct pt_regs *)bpf_task_pt_regs(t), tgid));
	else
		unmap_range(mp, tgid, to, from - to);
	return 0;
}

#endif /* MEMTOP_MAPPINGS_H */
