/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * User stacks: the one walk and the one store, for every concern that
 * records where memory came from: heap.h at an allocator's entry, growth.h at
 * a page fault, mappings.h at mmap, mremap and brk.
 *
 * A walk follows frame pointers (16 bytes per frame with
 * bpf_probe_read_user; bpf_get_stack costs 30x more in a uprobe, see field
 * notes section 2), or unwind tables (unwind.h) where the loader found
 * bpf_loop and bpf_find_vma; the compat build walks frame pointers only. The
 * frames are hashed (FNV-1a) as they are read, and the hash is the stack's
 * id: a stack is stored once, the first time its id is seen.
 */
#ifndef MEMTOP_STACK_H
#define MEMTOP_STACK_H

#include "common.h"
#ifndef MEMTOP_COMPAT
#include "unwind.h"
#endif

/* Walked stacks by id. Sized by the loader (--max-stacks); user space
 * deletes the stacks no aggregate references any more (Tracer::forget).
 * Allocated as stacks are stored (a stack is stored once, so it is not a hot
 * path): at start the kernel holds its buckets (16 bytes a slot), not 520
 * bytes a slot for a size that a busy host's system view needs and one
 * program seldom does. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, __u64);
	__type(value, struct memtop_stack);
} stacks SEC(".maps");

/* When a process's last new-stack event woke user space (ns). A new stack
 * is stored in bursts (a compiler's page faults: hundreds a second, most
 * of them in code whose maps user space already holds), and a wake-up per
 * event was most of memtop's CPU watching a build. The first event of a
 * process wakes user space at once (a short process's maps must be read
 * before it ends); those within MEMTOP_STACK_WAKE_NS after it wait for the
 * next wake-up or for user space's own read, at least as frequent
 * (Session::run). Keyed by tgid: a reused pid's first event may wait that
 * long too. */
#define MEMTOP_STACK_WAKE_NS (50 * 1000 * 1000ULL)
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} stack_woke SEC(".maps");

static __always_inline __u64 new_stack_wakeup(__u32 tgid)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *woke = bpf_map_lookup_elem(&stack_woke, &tgid);
	if (woke && now - *woke < MEMTOP_STACK_WAKE_NS)
		return BPF_RB_NO_WAKEUP;
	bpf_map_update_elem(&stack_woke, &tgid, &now, BPF_ANY);
	return 0;
}

struct unwind_scratch; /* common.h, full build only */

/* Fault and syscall stacks begin at an exact instruction, heap stacks at a
 * return address: kept apart even if the addresses agreed. */
#define EXACT_STACK_SALT 0x9e3779b97f4a7c15ULL

/* walk_user_stack() sets TRUNCATED as n / MEMTOP_MAX_FRAMES (n is at most
 * MEMTOP_MAX_FRAMES). */
_Static_assert(MEMTOP_STACK_TRUNCATED == 1, "TRUNCATED is bit 0");

/* Where a walk starts: how its first frame was found, and what it may do. */
enum stack_origin {
	STACK_AT_CALL,    /* a uprobe at a function's first instruction */
	STACK_AT_SYSCALL, /* the user registers a syscall entered the kernel with */
	STACK_AT_FAULT,   /* the same for a page fault, where interrupts are off */
};

/*
 * Walks the current thread's user stack into *s; returns the stack's id
 * (never MEMTOP_STACK_LOST).
 *
 * STACK_AT_CALL: pc is the return address into the caller, read from [sp]; sp
 * is the entry sp, bp still the caller's rbp, and the caller's frame starts
 * at sp + 8. A pc of 0 is no frame (the read failed): the stack is empty.
 * Otherwise pc is the instruction the thread entered the kernel at, sp and bp
 * its registers there, and frame 0 is pc, even 0 (a call through a null
 * pointer faults there). Those stacks hash with EXACT_STACK_SALT.
 * STACK_AT_FAULT: one bpf_find_vma call, the cache supplies the rest (see
 * vma_caches).
 *
 * tgid: the current process (the unwinder's mapping cache is per process).
 * scratch: the thread's unwind scratch (common.h; heap walks), whose window
 * the caller has emptied or filled at sp for this walk; NULL: none.
 *
 * Inlined, so origin is a constant and each caller keeps only its own
 * branches. Each kind of walk sets TRUNCATED in its own branch, in the form
 * that costs least where it runs: the verifier checks everything after the
 * walk once per way out of the frame-pointer loop unless those states prune,
 * and clang keeps that loop at its shortest (n itself as the counter) only
 * when n is tested against MEMTOP_MAX_FRAMES. The forms were chosen with
 * tools/bpf-insns.sh, which also shows what any change here costs.
 */
static __always_inline __u64 walk_user_stack(struct memtop_stack *s, __u64 pc, __u64 sp, __u64 bp, __u32 tgid,
                                             enum stack_origin origin, struct unwind_scratch *scratch)
{
	int exact = origin != STACK_AT_CALL;
	__u64 h = 0xcbf29ce484222325ULL ^ (exact ? EXACT_STACK_SALT : 0);
	__u32 n = 0, flags = 0;

	if (exact || pc) {
		s->ips[0] = pc;
		h = (h ^ pc) * 0x100000001b3ULL;
		n = 1;
#ifndef MEMTOP_COMPAT
		if (dwarf_unwind) {
			struct unwinder u = {
			        .r = {.pc = pc,
			              .sp = exact ? sp : sp + 8,
			              .bp = bp,
			              .exact = exact,
			              .tgid = tgid,
			              .image = current_image(),
			              .find_budget = origin == STACK_AT_FAULT ? find_budget_irqs_off
			                                                      : find_budget_walk},
			        .n = 1,
			        .h = h,
			        .out = s,
			        .scratch = scratch,
			};
			/* Inside a probed allocator (a mapping or page fault in
			 * malloc) a return probe may be in flight. A heap probe's
			 * own walk never meets one: inside a traced allocator
			 * call it is nested, and not walked. */
			if (exact)
				uretprobe_state(&u.r);
			bpf_loop(MEMTOP_MAX_FRAMES - 1, unwind_step, &u, 0);
			n = u.n;
			h = u.h;
			/* TRUNCATED: all MEMTOP_MAX_FRAMES frames. Never with
			 * COMPLETE: unwind_step() stops without a frame when it
			 * reaches the outermost one, so n is then smaller. */
			flags = u.r.flags | n / MEMTOP_MAX_FRAMES;
		} else
#endif
		{
			/* Follow the frame-pointer chain: bp belongs to the frame of pc. */
			for (__u32 i = 1; i < MEMTOP_MAX_FRAMES; i++) {
				struct {
					__u64 next;
					__u64 ret;
				} frame;
				if (bp < sp || bp - sp > MAX_FRAME_SPAN || (bp & 7))
					break;
				if (bpf_probe_read_user(&frame, sizeof(frame), (void *)bp) || !frame.ret)
					break;
				s->ips[i] = frame.ret;
				h = (h ^ frame.ret) * 0x100000001b3ULL;
				n = i + 1;
				if (frame.next <= bp)
					break;
				bp = frame.next;
			}
			if (n == MEMTOP_MAX_FRAMES)
				flags = MEMTOP_STACK_TRUNCATED;
		}
	}
	s->nr = n;
	s->flags = flags;
	h ^= h >> 29;
	return h ? h : 1; /* 0 is the lost-stack bucket */
}

/*
 * Stores a walked stack once, under *stack_id; sets *stack_id to
 * MEMTOP_STACK_LOST when the map is full. A stack stored here for the first
 * time tells user space (MEMTOP_EV_NEW_STACK, with its id) to make sure it
 * holds the process's mappings of every frame while the process is alive,
 * with the heap-traced process's record p when there is one: user space
 * keys its snapshot by p's epoch.
 */
static __always_inline void store_stack(__u64 *stack_id, const struct memtop_stack *s, __u32 tgid,
                                        const struct memtop_proc *p)
{
	if (!bpf_map_lookup_elem(&stacks, stack_id)) {
		if (bpf_map_update_elem(&stacks, stack_id, s, BPF_NOEXIST) == 0) {
			emit_stack_event(MEMTOP_EV_NEW_STACK, tgid, p ? p->epoch : 0, *stack_id,
			                 new_stack_wakeup(tgid));
		} else if (!bpf_map_lookup_elem(&stacks, stack_id)) {
			count(MEMTOP_CNT_STACK_MAP_FULL);
			*stack_id = MEMTOP_STACK_LOST;
		}
	}
}

#endif /* MEMTOP_STACK_H */
