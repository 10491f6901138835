/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * User-stack unwinding inside BPF, from tables user space derives from each
 * file's .eh_frame (user/unwind/cfi_table.cpp). This is what lets a stack go
 * through Debian's libc, libstdc++ and -O2 programs, none of which keep frame
 * pointers, while per-stack accounting stays in the kernel.
 *
 * Per frame: the row of the pc, from the thread's own cache (heap walks,
 * struct unwind_scratch in common.h), else unwind_pc_rows, else the long
 * way: the mapping of the pc (bpf_find_vma, skipped while consecutive frames
 * stay in one mapping), the file's table (hash by device and inode: one
 * table serves every process that maps the file) and a binary search of its
 * rows. Then one or two stack slots, from the heap walk's window of the
 * stack (one user read per walk, mostly) or read one by one. A file without
 * a table gets a frame-pointer step and user space is asked, once, to build
 * one.
 *
 * Needs bpf_loop and bpf_find_vma (5.17); the compat build walks frame
 * pointers only.
 */
#ifndef MEMTOP_UNWIND_H
#define MEMTOP_UNWIND_H

#ifdef MEMTOP_COMPAT
#error "unwind.h is for the full build: Linux 5.10 has neither bpf_loop nor bpf_find_vma"
#endif

#include "common.h"

/* Binary-search steps per frame: enough for 4M rows in one file. */
#define UNWIND_SEARCH_STEPS 22

/* Mappable: user space writes a file's rows through a mapping of their
 * pages (user/kernel/unwind/unwind_tables.cpp), not a syscall per row. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1 << 20); /* set by the loader (--max-unwind-rows) */
	__type(key, __u32);
	__type(value, struct memtop_unwind_row);
} unwind_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct memtop_file_key);
	__type(value, struct memtop_unwind_file);
} unwind_files SEC(".maps");

/*
 * Mappings found per process, so that a pc's file is known without asking
 * bpf_find_vma again. The page-fault tracepoint runs with interrupts off,
 * where bpf_find_vma defers its unlock to a per-CPU irq_work and refuses a
 * second call until that has run: there, one lookup per event is all there
 * is, and the cache (filled by every successful lookup, heap path included)
 * supplies the rest. Cleared at exec and exit. A library unmapped and
 * another mapped at the same address within one process could be misread
 * until then; memtop does not watch munmap for this.
 */
#define VMA_CACHE_SLOTS 16

struct vma_entry {
	__u64 start, end, off;
	struct memtop_file_key file;
};

struct vma_cache {
	__u32 next;
	__u32 pad;
	struct vma_entry e[VMA_CACHE_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 14);
	__type(key, __u32);
	__type(value, struct vma_cache);
} vma_caches SEC(".maps");

/* A zeroed vma_cache to insert from: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vma_cache);
} vma_cache_zero SEC(".maps");

/*
 * The row each return address (or exact pc) of a process image unwinds by,
 * once found: one hash lookup per frame instead of the mapping lookup (cache
 * scan, table lookup) and the binary search of the file's rows, which cost
 * most of a walk (tools/bpf-runtime.sh). Keyed by tgid and image (the
 * process's start time and exec count: a reused pid or a new exec never
 * reads another image's entries), so nothing needs deleting at exec or
 * exit; the least recently used entries make room. Only rows of READY
 * tables are kept: a frame without one takes the full path each time, and
 * asks for its table there. Like vma_caches, a library unmapped and another
 * mapped at the same address within one image could be misread.
 */
struct pc_row_key {
	__u32 tgid;
	__u32 image;
	__u64 addr; /* pc, minus 1 for a return address: the address looked up */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 14);
	__type(key, struct pc_row_key);
	__type(value, struct memtop_unwind_row);
} unwind_pc_rows SEC(".maps");

/* The current process image, for unwind_pc_rows: every thread of an image
 * has the exec count of the thread that made it (threads copy it, exec
 * increments it, and exec leaves no other thread). */
static __always_inline __u32 current_image(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 h = (t->group_leader->start_time ^ (t->self_exec_id * 0x9e3779b97f4a7c15ULL)) *
	          0xff51afd7ed558ccdULL;
	return (__u32)(h >> 32);
}

/* Set by the loader when the kernel has bpf_loop and bpf_find_vma. */
const volatile __u32 dwarf_unwind = 0;

/*
 * bpf_find_vma calls one walk may make: unbounded in a uprobe or a syscall,
 * one where interrupts are off (page faults; see vma_caches). Writable
 * globals on purpose: the verifier must not know their values. It checks a
 * bpf_loop callback as a loop, and a value it knows exactly and branches on
 * (a budget counting down 64, 63, ...) makes every iteration a new state:
 * 7.3's verifier gave up on the uprobe programs after a million
 * instructions. Unknown values let the iterations' states converge.
 */
__u32 find_budget_walk = MEMTOP_MAX_FRAMES;
__u32 find_budget_irqs_off = 1;

/* What one frame step reads and writes: scalars only, so that it can be
 * handed to unwind_frame() (a global function may write all of it). */
struct unwind_regs {
	__u64 pc, sp, bp;       /* the frame being left: its pc and registers */
	__u64 vm_start, vm_end; /* mapping of the last pc looked up */
	__u64 vm_off;           /* file offset of vm_start */
	struct memtop_file_key file;
	__u32 row_start, row_count;
	__u32 state; /* of file's table; ~0: none (anonymous memory) */
	__u32 flags; /* MEMTOP_STACK_* */
	__u32 exact; /* pc is an instruction address, not a return address */
	__u32 tgid;
	__u32 find_budget; /* bpf_find_vma calls still allowed */
	__u32 image;       /* this process image's key in unwind_pc_rows (current_image()) */
	/* Return probes in flight: a return address that is the kernel's
	 * trampoline stands for the next of these instances' saved one. */
	__u64 trampoline;   /* its address, 0: none in this process */
	__u64 ret_instance; /* struct return_instance *, innermost not yet used */
};

/*
 * A function with a return probe (malloc, ...) returns to the kernel's
 * trampoline in the [uprobes] page while it runs: the kernel keeps the real
 * return address in the thread's list of return instances, innermost first.
 * A walk meets the trampolines in the same order. A chained instance (one
 * probed function tail-called another) shares its trampoline with the next.
 * Read here, once per walk.
 */
static __always_inline void uretprobe_state(struct unwind_regs *u)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct return_instance *ri = BPF_CORE_READ(t, utask, return_instances);
	if (!ri)
		return;
	struct xol_area *area = BPF_CORE_READ(t, mm, uprobes_state.xol_area);
	if (!area)
		return;
	u->trampoline = BPF_CORE_READ(area, vaddr);
	u->ret_instance = (__u64)ri;
}

/* ret, or the real return address if ret is the trampoline. */
static __always_inline __u64 uretprobe_return(struct unwind_regs *u, __u64 ret)
{
	if (!u->trampoline || ret != u->trampoline || !u->ret_instance)
		return ret;
	struct return_instance *ri = (struct return_instance *)u->ret_instance;
	__u64 orig = BPF_CORE_READ(ri, orig_ret_vaddr);
	for (int i = 0; i < 4 && ri && BPF_CORE_READ(ri, chained); i++)
		ri = BPF_CORE_READ(ri, next);
	u->ret_instance = ri ? (__u64)BPF_CORE_READ(ri, next) : 0;
	return orig;
}

struct unwinder {
	struct unwind_regs r;
	__u64 h; /* FNV-1a of the frames */
	struct memtop_stack *out;
	struct unwind_scratch *scratch; /* NULL: none (see unwind_frame) */
	__u32 n;                        /* frames in out->ips */
	__u32 pad;
};

/* Where a pc is mapped: filled by bpf_find_vma's callback or the cache. */
struct vma_hit {
	__u64 start, end, off;
	struct memtop_file_key file;
};

static long vma_found(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_hit *h = data;
	struct file *f = vma->vm_file;

	h->start = vma->vm_start;
	h->end = vma->vm_end;
	h->off = vma->vm_pgoff << 12;
	h->file.ino = 0;
	h->file.dev = 0;
	if (f) {
		h->file.ino = BPF_CORE_READ(f, f_inode, i_ino);
		h->file.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	}
	return 0;
}

/* Asks user space to build the table of u->file (MEMTOP_EV_NEED_UNWIND). */
static __always_inline void emit_need_unwind(struct unwind_regs *u)
{
	struct memtop_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(MEMTOP_CNT_EVENTS_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = MEMTOP_EV_NEED_UNWIND;
	e->tgid = u->tgid;
	e->file = u->file;
	bpf_ringbuf_submit(e, 0);
}

/* The binary search and the cache scan run as bpf_loop callbacks: verified
 * once each, where open-coded bounded loops made the verifier walk every
 * iteration of every path, for every program (seconds of load time). */
struct row_search {
	__u64 off;
	__u32 lo, len;
};

static long row_search_step(__u32 i, void *data)
{
	struct row_search *s = data;
	if (s->len <= 1)
		return 1;
	__u32 half = s->len / 2, mid = s->lo + half;
	const struct memtop_unwind_row *r = bpf_map_lookup_elem(&unwind_rows, &mid);
	if (!r) {
		s->len = 0;
		return 1;
	}
	if (r->off <= s->off)
		s->lo = mid;
	s->len -= half;
	return 0;
}

static __always_inline const struct memtop_unwind_row *unwind_find_row(struct unwind_regs *u, __u64 off)
{
	struct row_search s = {.off = off, .lo = u->row_start, .len = u->row_count};

	if (!s.len)
		return NULL;
	bpf_loop(UNWIND_SEARCH_STEPS, row_search_step, &s, 0);
	if (!s.len)
		return NULL;
	const struct memtop_unwind_row *r = bpf_map_lookup_elem(&unwind_rows, &s.lo);
	if (!r || r->off > off)
		return NULL;
	return r;
}

struct cache_scan {
	__u64 pc;
	struct vma_cache *c;
	struct vma_hit hit;
};

static long cache_scan_step(__u32 i, void *data)
{
	struct cache_scan *cs = data;
	if (i >= VMA_CACHE_SLOTS)
		return 1;
	struct vma_entry *e = &cs->c->e[i];
	if (cs->pc < e->start || cs->pc >= e->end)
		return 0;
	cs->hit.start = e->start;
	cs->hit.end = e->end;
	cs->hit.off = e->off;
	cs->hit.file = e->file;
	return 1;
}

/* Finds the mapping and table of u->pc; returns 0 when pc is not mapped. */
static __always_inline int unwind_locate(struct unwind_regs *u)
{
	if (u->pc >= u->vm_start && u->pc < u->vm_end)
		return 1;
	/* Map keys go through the stack: before 6.x a helper takes no key in
	 * the memory a global function was handed. */
	__u32 tgid = u->tgid;
	struct cache_scan cs = {.pc = u->pc};
	cs.c = bpf_map_lookup_elem(&vma_caches, &tgid);
	if (cs.c)
		bpf_loop(VMA_CACHE_SLOTS, cache_scan_step, &cs, 0);
	if (!cs.hit.end) {
		if (!u->find_budget)
			return 0;
		u->find_budget--;
		if (bpf_find_vma(bpf_get_current_task_btf(), u->pc, vma_found, &cs.hit, 0) || !cs.hit.end)
			return 0;
		struct vma_cache *c = cs.c;
		if (!c) {
			__u32 zero = 0;
			struct vma_cache *empty = bpf_map_lookup_elem(&vma_cache_zero, &zero);
			if (empty) {
				bpf_map_update_elem(&vma_caches, &tgid, empty, BPF_NOEXIST);
				c = bpf_map_lookup_elem(&vma_caches, &tgid);
			}
		}
		if (c) {
			__u32 slot = __sync_fetch_and_add(&c->next, 1) % VMA_CACHE_SLOTS;
			struct vma_entry *e = &c->e[slot];
			e->start = cs.hit.start;
			e->end = cs.hit.end;
			e->off = cs.hit.off;
			e->file = cs.hit.file;
		}
	}
	u->vm_start = cs.hit.start;
	u->vm_end = cs.hit.end;
	u->vm_off = cs.hit.off;
	u->file = cs.hit.file;
	u->state = ~0U;
	if (!cs.hit.file.ino)
		return 1;
	struct memtop_unwind_file *t = bpf_map_lookup_elem(&unwind_files, &cs.hit.file);
	if (!t) {
		struct memtop_unwind_file req = {.state = MEMTOP_UNWIND_REQUESTED};
		/* Only the first asker tells user space. */
		if (bpf_map_update_elem(&unwind_files, &cs.hit.file, &req, BPF_NOEXIST) == 0)
			emit_need_unwind(u);
		u->state = MEMTOP_UNWIND_REQUESTED;
		return 1;
	}
	u->state = t->state;
	u->row_start = t->row_start;
	u->row_count = t->row_count;
	return 1;
}

/*
 * The window of the user stack (struct unwind_scratch, common.h): reads
 * UNWIND_WINDOW bytes from addr, or, where that runs past the end of the
 * mapping (the top of a stack), to the end of addr's page. 1: the window
 * now starts at addr.
 */
static __always_inline int window_fill(struct unwind_scratch *x, __u64 addr)
{
	if (bpf_probe_read_user(x->win, UNWIND_WINDOW, (void *)addr) == 0) {
		x->win_base = addr;
		x->win_len = UNWIND_WINDOW;
		return 1;
	}
	__u32 n = 4096 - (__u32)(addr & 4095);
	/* Each bound tested on n itself, apart: clang otherwise tests a copy
	 * (n - 8 <= 1015), whose bounds 6.1's verifier does not carry over. */
	asm volatile("" : "+r"(n));
	if (n >= UNWIND_WINDOW)
		goto none;
	asm volatile("" : "+r"(n));
	if (n < 8)
		goto none;
	if (bpf_probe_read_user(x->win, n, (void *)addr) == 0) {
		x->win_base = addr;
		x->win_len = n;
		return 1;
	}
none:
	x->win_len = 0;
	return 0;
}

/*
 * 8 bytes of user memory at addr: from the window when there is one
 * (refilled from addr when addr is outside it), else one user read. The
 * window only ever holds this walk's copy of this thread's stack: a slot
 * read twice reads the same value, as two user reads would while the thread
 * is stopped in its probe.
 */
static __always_inline long read_user_u64(struct unwind_scratch *x, __u64 addr, __u64 *out)
{
	if (x && !(addr & 7)) {
		__u64 d = addr - x->win_base;
		/* win_base and addr are 8-aligned and win_len a multiple of 8:
		 * d < win_len leaves 8 bytes. */
		if (d < x->win_len) {
			*out = *(__u64 *)(x->win + (d & (UNWIND_WINDOW - 8)));
			return 0;
		}
		if (window_fill(x, addr)) {
			*out = *(__u64 *)x->win;
			return 0;
		}
	}
	return bpf_probe_read_user(out, sizeof(*out), (void *)addr);
}

/* The slot of an address in unwind_scratch.pcs. */
static __always_inline __u32 pc_slot(__u64 addr)
{
	return (__u32)((addr ^ (addr >> 6) ^ (addr >> 12)) & (UNWIND_PC_SLOTS - 1));
}

/*
 * One frame up: from u->pc's frame to its caller's; returns 1 with the
 * caller's pc in u->pc, 0 to stop. x: the thread's scratch (heap walks), or
 * NULL (the user reads are made one by one, rows come from unwind_pc_rows).
 *
 * A global function, verified once on its own with u and x as plain memory.
 * As a static function inside the bpf_loop callback, the verifier explored
 * it again for every state the loop could be in, times every program: 7.3's
 * verifier gave up on the uprobe programs after a million instructions.
 */
__noinline int unwind_frame(struct unwind_regs *u, struct unwind_scratch *x)
{
	__u64 cfa, ret = 0;

	if (!u)
		return 0;
	__u64 bp = u->bp;
	/* A return address points after its call: look up the call. */
	struct pc_row_key k = {.tgid = u->tgid, .image = u->image, .addr = u->pc - (u->exact ? 0 : 1)};
	struct memtop_unwind_row row;
	int have_row = 0;
	/* Rows are fixed per (image, address): the thread's own cache first. */
	struct unwind_pc_slot *slot = x ? &x->pcs[pc_slot(k.addr)] : NULL;
	if (slot && slot->used && slot->addr == k.addr && slot->image == k.image) {
		row = slot->row;
		have_row = 1;
	} else {
		const struct memtop_unwind_row *r = bpf_map_lookup_elem(&unwind_pc_rows, &k);
		if (!r) {
			if (!unwind_locate(u))
				return 0;
			if (u->state == MEMTOP_UNWIND_READY) {
				r = unwind_find_row(u, k.addr - u->vm_start + u->vm_off);
				if (!r)
					return 0;
				bpf_map_update_elem(&unwind_pc_rows, &k, r, BPF_ANY);
			}
		}
		if (r) {
			row = *r;
			have_row = 1;
			if (slot) {
				slot->addr = k.addr;
				slot->image = k.image;
				slot->row = row;
				slot->used = 1;
			}
		}
	}

	if (have_row) {
		switch (memtop_row_type(&row)) {
		case MEMTOP_ROW_CFA_RSP:
			cfa = u->sp + ((__u64)memtop_row_cfa(&row) << 3);
			break;
		case MEMTOP_ROW_CFA_RBP:
			cfa = u->bp + ((__u64)memtop_row_cfa(&row) << 3);
			break;
		case MEMTOP_ROW_PLT:
			cfa = u->sp + 8;
			break;
		case MEMTOP_ROW_OUTERMOST:
			u->flags |= MEMTOP_STACK_COMPLETE;
			return 0;
		default:
			return 0;
		}
		if (read_user_u64(x, cfa - 8, &ret))
			return 0;
		if (row.rbp && read_user_u64(x, cfa + ((__s64)row.rbp << 3), &bp))
			return 0;
		u->flags |= MEMTOP_STACK_DWARF;
		u->sp = cfa;
		u->bp = bp;
	} else {
		/* No table (JIT code, or one not built yet): frame pointers,
		 * bp -> {caller's rbp, return address}. */
		__u64 next = 0;
		if (bp < u->sp || bp - u->sp > MAX_FRAME_SPAN || (bp & 7))
			return 0;
		if (read_user_u64(x, bp, &next) || read_user_u64(x, bp + 8, &ret))
			return 0;
		u->sp = bp + 16;
		u->bp = next;
	}
	u->exact = 0;
	ret = uretprobe_return(u, ret);
	if (!ret)
		return 0;
	u->pc = ret;
	return 1;
}

/*
 * The bpf_loop callback: one frame per iteration. Every iteration that goes
 * on adds exactly one frame, so iteration i writes frame i + 1 (frame 0 is
 * put there before the loop): the position comes from the loop index, which
 * the verifier treats as unknown, not from u->n, which it would track
 * exactly, making every iteration a new state (see find_budget_walk).
 */
static long unwind_step(__u32 i, void *data)
{
	struct unwinder *u = data;

	if (!unwind_frame(&u->r, u->scratch))
		return 1;
	__u32 n = i + 1;
	if (n >= MEMTOP_MAX_FRAMES)
		return 1;
	__u64 ret = u->r.pc;
	u->out->ips[n & (MEMTOP_MAX_FRAMES - 1)] = ret;
	u->h = (u->h ^ ret) * 0x100000001b3ULL;
	u->n = n + 1;
	return 0;
}

#endif /* MEMTOP_UNWIND_H */
