/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What more than one of memtop's BPF concerns uses: the lost counters and the
 * event ring buffer (count(), emit()), the process table the heap probes fill
 * and the others consult, the per-thread state between an allocator's entry
 * and its return, the loader's filters, and the two places where the compat
 * build (Linux 5.10, BPF ISA v2: no task storage in tracing programs, no
 * fetching atomics) needs other code: thread_state() and ADD_FETCH/NEW_EPOCH.
 */
#ifndef MEMTOP_COMMON_H
#define MEMTOP_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "memtop.h"

/* Largest distance between the stack pointer and a frame pointer we still
 * believe; frames farther away are garbage in a register that is not used as
 * a frame pointer. Matches the default 8 MiB stack limit. Both stack walks
 * use it: stack.h's frame-pointer loop and unwind.h's step for code without
 * a table. */
#define MAX_FRAME_SPAN (8ULL << 20)

/* memtop itself: with --heap-all its own allocations would feed back into
 * what it reports. */
const volatile __u32 self_tgid = 0;

/* With a target (-p, -- CMD, --cgroup): growth and mapping stacks only of
 * the heap-traced processes. */
const volatile __u32 traced_only = 0;

/* Source of process-instance numbers; 0 is never handed out. */
__u32 next_epoch = 0;

#ifndef MEMTOP_COMPAT
/*
 * The heap walk's per-thread scratch (unwind.h), in call_state:
 * - a window of the user stack, read with one bpf_probe_read_user and
 *   refilled where a slot lies outside it: the walk reads return addresses
 *   and saved rbp from it instead of one user read each (a user read costs
 *   about as much as the rest of a frame step: tools/bpf-runtime.sh, perf);
 *   emptied at the start of every walk, so no walk sees another's memory;
 * - a direct-mapped cache of (image, address) -> unwind row, in front of
 *   unwind_pc_rows: a repeated stack's frames cost no hash lookup.
 */
#define UNWIND_WINDOW   1024 /* bytes; a power of two */
#define UNWIND_PC_SLOTS 64   /* a power of two */

struct unwind_pc_slot {
	__u64 addr;  /* pc, minus 1 for a return address */
	__u32 image; /* current_image() */
	__u32 used;
	struct memtop_unwind_row row;
};

struct unwind_scratch {
	__u64 win_base; /* user address of win[0] */
	__u32 win_len;  /* bytes of win that hold user memory; 0: none */
	__u32 pad;
	__u8 win[UNWIND_WINDOW];
	struct unwind_pc_slot pcs[UNWIND_PC_SLOTS];
};
#endif

/* Per-thread state between an allocator's entry and its return (heap.h);
 * process_exit frees it in the compat build, where no task storage does. */
#define PY_ADOPT_DROP 2 /* call_state's py_adopt: the Python-only sampler's raw block */
/* py_adopted: a realloc'd domain block recorded under its old stack (not walked) */
#define PY_ADOPT_OLD_STACK 3

struct call_state {
	__u64 sp;       /* stack pointer at the outermost allocator entry */
	__u64 size;     /* requested bytes */
	__u64 arg_ptr;  /* realloc: old pointer; posix_memalign: memptr */
	__u64 adopt_sp; /* operator new: sp of the allocation it makes inside */
	__u32 kind;
	__u32 active;   /* an outermost call is in flight */
	__u64 old_size; /* realloc: the record taken out at entry */
	__u64 old_stack_id;
	__u32 old_found;
	__u32 sampled;       /* --sample: this call is recorded (always 1 when exact) */
	__s64 countdown;     /* --sample: bytes left until this thread's next sample */
	__u32 countdown_set; /* countdown has been drawn */
	__u32 pad;
	__u64 stack_id;
	__u64 last_alloc; /* the block this thread allocated last: freed next, it was temporary */
	/* mimalloc heaps (heap.h): the heap this call allocates from, the
	 * thread's default heap (mi_heap_set_default), the heap of the block a
	 * realloc took out at entry; 0: none memtop knows. */
	__u64 heap;
	__u64 mi_default_heap;
	__u64 old_heap;
	__u64 extra; /* xallocx: the extra bytes asked for */
	__u32 flags; /* CALL_* (heap.h) */
	__u32 pad2;
	struct memtop_stack stack;
#ifndef MEMTOP_COMPAT
	__u32 py_gen; /* py_procs_gen + 1 when py_on was looked up (python_frames.h) */
	__u32 py_on;  /* this thread's process is a CPython in py_procs */
	/* Python's object-allocator domain (pymalloc_domain.h): the next
	 * outermost allocator call is PyMem_RawMalloc's for a Python block over
	 * 512 bytes (py_adopt 1: counted in the domain, exactly; PY_ADOPT_DROP:
	 * the Python-only sampler's, counted in the domain if it sampled it,
	 * never in the heap); the call in flight is one (py_adopted). */
	__u32 py_adopt;
	__u32 py_adopted;
	/* Python objects sampled in BPF (sample.h, sample_py_object): bytes
	 * left until this thread's next sampled object, and whether drawn. */
	__s64 py_countdown;
	__u32 py_countdown_set;
	__u32 py_pad;
	struct unwind_scratch scratch;
#endif
};

#ifndef MEMTOP_COMPAT
/* Kept in task storage: freed with the thread, no pid-keyed map to leak when
 * threads die. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct call_state);
} call_states SEC(".maps");

static __always_inline struct call_state *thread_state(int create)
{
	return bpf_task_storage_get(&call_states, bpf_get_current_task_btf(), 0,
	                            create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* The value of *p after adding v, atomically. */
#define ADD_FETCH(p, v) (__sync_fetch_and_add((p), (v)) + (v))
#define NEW_EPOCH()     (__sync_fetch_and_add(&next_epoch, 1) + 1)
#else
/*
 * Linux 5.10 (MEMTOP_COMPAT, built for BPF ISA v2): tracing programs get no
 * task storage and no fetching atomics. Per-thread state lives in a hash
 * keyed by thread id, deleted when the thread exits; counters still add
 * atomically, but the peak is raised without compare-and-swap, so it is
 * exact only while one thread allocates at a time.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 15);
	__type(key, __u32);
	__type(value, struct call_state);
} call_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct call_state);
} zero_state SEC(".maps");

static __always_inline struct call_state *thread_state(int create)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call_state *st = bpf_map_lookup_elem(&call_states, &tid);
	if (st || !create)
		return st;
	__u32 zero = 0;
	struct call_state *z = bpf_map_lookup_elem(&zero_state, &zero);
	if (!z)
		return NULL;
	bpf_map_update_elem(&call_states, &tid, z, BPF_NOEXIST);
	return bpf_map_lookup_elem(&call_states, &tid);
}

#define ADD_FETCH(p, v)                         \
	({                                      \
		__sync_fetch_and_add((p), (v)); \
		*(volatile typeof(*(p)) *)(p);  \
	})
#define NEW_EPOCH() ((__u32)(bpf_ktime_get_ns() >> 10) | 1)
#endif

/* Heap-traced processes, keyed by tgid: created by the heap probes (heap.h),
 * ended by the lifecycle tracepoints (lifecycle.h), and with a target the
 * set of processes whose growth and mappings are recorded. Sized by the
 * loader (--max-procs). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 14);
	__type(key, __u32);
	__type(value, struct memtop_proc);
} procs SEC(".maps");

/* With a target (-p, -- CMD and, with -f, what it starts): its processes,
 * put here by user space before they run on (-- CMD) or at the attach (-p).
 * Their growth and mappings are recorded from then on, not only once their
 * first heap allocation has made their entry in procs. Ended by
 * lifecycle.h with the process. Hashed without preallocation: a few
 * entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 14);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

/* With a target, whether process tgid's growth and mappings are recorded:
 * a target's, or one whose heap is traced. */
static __always_inline int target_process(__u32 tgid)
{
	return bpf_map_lookup_elem(&targets, &tgid) || bpf_map_lookup_elem(&procs, &tgid);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MEMTOP_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	/* Atomic even in a per-CPU slot: uprobe programs can be preempted, and
	 * another thread on the same CPU may be counting between our read and
	 * our write. */
	if (c)
		__sync_fetch_and_add(c, 1);
}

/* An address space's identity: its mm and its process's start time, so
 * neither a reused pid nor a reused mm_struct can pass for another. 0 is
 * never an id. */
static __always_inline __u32 mm_instance_id(__u64 mm, __u64 leader_start)
{
	__u64 h = (mm ^ (leader_start * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;
	return (__u32)(h >> 32) | 1;
}

/* The id of the address space task t runs in (mappings.h, growth.h). */
static __always_inline __u32 current_mm_id(struct task_struct *t)
{
	return mm_instance_id((__u64)BPF_CORE_READ(t, mm), BPF_CORE_READ(t, group_leader, start_time));
}

/* Raises a peak to `now` if it is higher: with compare-and-swap, so that a
 * racing thread's higher value is never overwritten, where the ISA has it. */
static __always_inline void raise_peak(__s64 *peak, __s64 now)
{
#ifndef MEMTOP_COMPAT
	__s64 seen = *peak;
	for (int i = 0; i < 16; i++) {
		if (now <= seen)
			return;
		__s64 prev = __sync_val_compare_and_swap(peak, seen, now);
		if (prev == seen)
			return;
		seen = prev;
	}
	count(MEMTOP_CNT_PEAK_RACE);
#else
	if (now > *peak)
		*peak = now;
#endif
}

/* A stack event (struct memtop_stack_event); flags: bpf_ringbuf_submit's. */
static __always_inline void emit_stack_event(__u32 type, __u32 tgid, __u32 epoch, __u64 stack_id, __u64 flags)
{
	struct memtop_stack_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(MEMTOP_CNT_EVENTS_LOST);
		return;
	}
	e->type = type;
	e->tgid = tgid;
	e->epoch = epoch;
	e->pad = 0;
	e->stack_id = stack_id;
	bpf_ringbuf_submit(e, flags);
}

/* A process event (exit, exec) with whichever of its numbers the
 * caller has; a missing one reads as zero. */
static __always_inline void emit(__u32 type, __u32 tgid, const struct memtop_proc *p,
                                 const struct memtop_rss *r, const struct memtop_map_proc *mp)
{
	struct memtop_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(MEMTOP_CNT_EVENTS_LOST);
		return;
	}
	e->type = type;
	e->tgid = tgid;
	if (mp) {
		e->mm_id = mp->mm_id;
		e->mapped_bytes = mp->bytes;
		e->mapped_peak_bytes = mp->peak_bytes;
	} else {
		e->mm_id = 0;
		e->mapped_bytes = e->mapped_peak_bytes = 0;
	}
	if (p) {
		e->epoch = p->epoch;
		e->heap_bytes = p->heap_bytes;
		e->heap_peak_bytes = p->heap_peak_bytes;
		e->allocs_total = p->allocs_total;
		e->frees_total = p->frees_total;
		e->py_bytes = p->py_bytes;
		e->py_peak_bytes = p->py_peak_bytes;
		e->py_allocs_total = p->py_allocs_total;
		e->py_frees_total = p->py_frees_total;
		__builtin_memcpy(e->comm, p->comm, sizeof(e->comm));
	} else {
		e->epoch = 0;
		e->heap_bytes = e->heap_peak_bytes = 0;
		e->allocs_total = e->frees_total = 0;
		e->py_bytes = e->py_peak_bytes = 0;
		e->py_allocs_total = e->py_frees_total = 0;
		bpf_get_current_comm(e->comm, sizeof(e->comm)); /* events fire in the process's own context */
	}
	if (r) {
		for (int i = 0; i < 4; i++)
			e->rss[i] = r->bytes[i];
		e->rss_peak_bytes = r->peak_bytes;
	} else {
		for (int i = 0; i < 4; i++)
			e->rss[i] = 0;
		e->rss_peak_bytes = 0;
	}
	bpf_ringbuf_submit(e, 0);
}

#endif /* MEMTOP_COMMON_H */
