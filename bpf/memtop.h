/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Types shared by the BPF programs (memtop.bpf.c) and the user-space loader.
 * Plain C, fixed-width fields, explicit padding: the loader static_asserts
 * every size so the two sides cannot drift apart.
 */
#ifndef MEMTOP_H
#define MEMTOP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Frames kept per stack. 64 return addresses cover deep C++ call chains; the
 * walk stops earlier at the first frame that does not look like one. */
#define MEMTOP_MAX_FRAMES 64

/* Allocator entry points, one BPF program per argument layout. */
enum memtop_kind {
	MEMTOP_KIND_MALLOC = 0,     /* size in arg0: malloc, valloc, pvalloc */
	MEMTOP_KIND_CALLOC,         /* nmemb, size */
	MEMTOP_KIND_REALLOC,        /* ptr, size */
	MEMTOP_KIND_MEMALIGN,       /* align, size: memalign, aligned_alloc */
	MEMTOP_KIND_POSIX_MEMALIGN, /* void **memptr, align, size -> int */
	MEMTOP_KIND_NEW,            /* size in arg0; may throw instead of returning */
	MEMTOP_KIND_NEW_OWN,        /* the same, allocating without malloc: taken at its rets */
	MEMTOP_KIND_STRING,         /* strdup, strndup, realpath: the size is the result's length + 1 */
	MEMTOP_KIND_EXPAND,         /* ptr, size: an in-place resize (mi_expand, xallocx) */
	MEMTOP_KIND_HEAP_NEW,       /* mimalloc's mi_heap_new: the heap it returns is one memtop knows */
};

/* The attach cookie of alloc_entry and op_new_entry (bpf/heap.h), the
 * programs that serve the plain allocation entries and operator new's where
 * the loader uses attach cookies: which call a probe is on, hence where its
 * size and old block are. */
enum memtop_entry_cookie {
	MEMTOP_ENTRY_MALLOC = 1,     /* size */
	MEMTOP_ENTRY_CALLOC,         /* nmemb, size */
	MEMTOP_ENTRY_REALLOC,        /* ptr, size */
	MEMTOP_ENTRY_REALLOCARRAY,   /* ptr, nmemb, size */
	MEMTOP_ENTRY_MEMALIGN,       /* align, size */
	MEMTOP_ENTRY_POSIX_MEMALIGN, /* memptr, align, size */
	/* op_new_entry's: operator new's entries (bpf/heap.h) */
	MEMTOP_ENTRY_NEW,       /* size; the block comes from the malloc inside */
	MEMTOP_ENTRY_NEW_OWN,   /* size; the block is taken at new's rets */
	MEMTOP_ENTRY_NEW_N_OWN, /* count, size */
};

/* stack_id 0 is the bucket for allocations whose stack could not be stored. */
#define MEMTOP_STACK_LOST 0ULL

/* memtop_stack.flags */
#define MEMTOP_STACK_TRUNCATED 1 /* the walk hit MEMTOP_MAX_FRAMES */
#define MEMTOP_STACK_COMPLETE  2 /* reached the outermost frame (_start, a thread's start) */
#define MEMTOP_STACK_DWARF     4 /* at least one frame came from unwind tables */

struct memtop_stack {
	__u32 nr;                     /* frames used in ips[] */
	__u32 flags;                  /* MEMTOP_STACK_* */
	__u64 ips[MEMTOP_MAX_FRAMES]; /* ips[0]: return address into the allocator's caller */
};

/* One live allocation, keyed by the process instance that made it. */
struct memtop_alloc_key {
	__u32 tgid;
	__u32 epoch; /* process instance: changes at exec and on pid reuse */
	__u64 addr;
};

struct memtop_alloc_val {
	__u64 size;
	__u64 stack_id;
	__u64 birth_ns; /* bpf_ktime_get_ns() when allocated: its age at a report */
};

/* py_allocs (Python's object domain, bpf/pymalloc_domain.h) keeps no birth
 * time: its birth_ns is 0, or this for an object the in-process sampler
 * sampled (its aggregate is keyed by its size, to be weighed). */
#define MEMTOP_PY_SAMPLED 1
/* memtop_sampled_py_free's messages (bpf/pymalloc.h), ptr values no object
 * has; user/sampler/sampler.c sends them. */
#define MEMTOP_PY_MSG_RAW        1
#define MEMTOP_PY_MSG_HOOKS_LOST 2

/* mimalloc: the heap a live block was allocated from (bpf/heap.h, mi_blocks). */
struct memtop_mi_tag {
	__u64 heap;
	__u64 birth_ns; /* memtop_alloc_val.birth_ns of the block tagged */
};

/* Per (process instance, stack) aggregate. */
struct memtop_agg_key {
	__u32 tgid;
	__u32 epoch;
	__u64 stack_id;
	/* Heap aggregates under --sample: the blocks' true size, so that user
	 * space can weight each size by its own sampling probability (bpf/heap.h);
	 * 0 everywhere else. */
	__u64 size;
};

struct memtop_agg_val {
	__s64 bytes;             /* outstanding */
	__s64 allocs;            /* outstanding */
	__u64 alloc_bytes_total; /* cumulative */
	__u64 allocs_total;      /* cumulative */
	/* Temporary allocations (heaptrack's sense): freed by the thread that
	 * made them before it made any other allocation. Cumulative. */
	__u64 temp_allocs;
	__u64 temp_bytes;
};

/* Page-fault growth per (process, stack), keyed by memtop_agg_key with
 * epoch 0: sampled first-touch faults (see page_fault_user). */
struct memtop_growth_val {
	__u64 samples; /* sampled not-present faults */
	__u64 pad;
};

/* Anonymous memory a process mapped with mmap/mremap/brk while memtop
 * watched, keyed by tgid (bpf/mappings.h). */
struct memtop_map_proc {
	__u32 mm_id; /* the address space these bytes belong to */
	__u32 pad;
	__s64 bytes;      /* still mapped */
	__s64 peak_bytes; /* highest `bytes` */
	__u64 maps_total; /* mappings made */
};

/* Per process, keyed by tgid. */
struct memtop_proc {
	__u32 epoch;
	__u32 mi_heaps; /* made a mimalloc heap memtop saw (mi_heap_new): its frees untag blocks */
	__s64 heap_bytes;
	__s64 heap_peak_bytes; /* exact: raised at allocation time in the kernel */
	__u64 allocs_total;
	__u64 frees_total;
	char comm[16];
	/* Python's object allocator (bpf/pymalloc.h): blocks pymalloc serves
	 * (1..512 bytes), apart from the heap above. */
	__s64 py_bytes;
	__s64 py_peak_bytes;
	__u64 py_allocs_total;
	__u64 py_frees_total;
};

/* pymalloc probe recipes (bpf/pymalloc.h), in the uprobe's cookie:
 * bits 0-3 the kind, 4-7 the register holding the value (0: the immediate),
 * 8-31 the immediate, 32-63 the address of pymalloc's usedpools array (a
 * non-PIE executable's: the address is the file's). */
enum memtop_pym_kind {
	MEMTOP_PYM_MALLOC_SITE = 1, /* inlined check of a malloc: the size */
	MEMTOP_PYM_FREE_SITE = 2,   /* inlined check of a free: the block */
	MEMTOP_PYM_MALLOC_FN = 3,   /* pymalloc's malloc function: size in rsi */
	MEMTOP_PYM_FREE_FN = 4,     /* pymalloc's free function: block in rsi */
};
enum memtop_pym_reg {
	MEMTOP_PYM_REG_RAX = 1,
	MEMTOP_PYM_REG_RBX,
	MEMTOP_PYM_REG_RCX,
	MEMTOP_PYM_REG_RDX,
	MEMTOP_PYM_REG_RSI,
	MEMTOP_PYM_REG_RDI,
	MEMTOP_PYM_REG_RBP,
	MEMTOP_PYM_REG_R8,
	MEMTOP_PYM_REG_R9,
	MEMTOP_PYM_REG_R10,
	MEMTOP_PYM_REG_R11,
	MEMTOP_PYM_REG_R12,
	MEMTOP_PYM_REG_R13,
	MEMTOP_PYM_REG_R14,
	MEMTOP_PYM_REG_R15,
};
#define MEMTOP_PYM_SMALL_MAX 512 /* pymalloc's SMALL_REQUEST_THRESHOLD */
#define MEMTOP_PYM_COOKIE(kind, reg, imm, pools) \
	((__u64)(kind) | ((__u64)(reg) << 4) | ((__u64)((imm)&0xffffff) << 8) | ((__u64)(pools) << 32))
#define MEMTOP_PYM_COOKIE_KIND(c)  ((__u32)((c)&0xf))
#define MEMTOP_PYM_COOKIE_REG(c)   ((__u32)(((c) >> 4) & 0xf))
#define MEMTOP_PYM_COOKIE_IMM(c)   (((c) >> 8) & 0xffffff)
#define MEMTOP_PYM_COOKIE_POOLS(c) ((c) >> 32)

/* Counted, never silent: indexes into the per-CPU `counters` array, one per
 * line of lost_counters.def (what each means is said there). */
enum memtop_counter {
#define LOST_COUNTER(id, name, text, brief, option) MEMTOP_CNT_##id,
#include "lost_counters.def"
#undef LOST_COUNTER
	MEMTOP_CNT__MAX,
};

/*
 * Unwind tables (bpf/unwind.h walks them, user/unwind builds them). One row
 * per code range of a file: how to find the caller's frame from there. The
 * return address is always at CFA - 8 on x86-64.
 */
enum memtop_row_type {
	MEMTOP_ROW_CFA_RSP = 0,     /* CFA = rsp + cfa*8 */
	MEMTOP_ROW_CFA_RBP = 1,     /* CFA = rbp + cfa*8 */
	MEMTOP_ROW_OUTERMOST = 2,   /* return address undefined: _start, thread start */
	MEMTOP_ROW_NONE = 3,        /* no call-frame information for this range */
	MEMTOP_ROW_UNSUPPORTED = 4, /* a rule the unwinder does not follow */
	MEMTOP_ROW_PLT = 5,         /* PLT stubs: CFA = rsp + 8 (+8 after the push) */
};

struct memtop_unwind_row {
	__u32 off; /* file offset where the row starts */
	__u16 cfa; /* CFA offset from its register, in 8-byte units: low 16 bits */
	__u8 type; /* enum memtop_row_type in bits 0-2; bits 3-7: the CFA offset's bits 16-20 */
	__s8 rbp;  /* caller's rbp saved at CFA + rbp*8; 0: rbp unchanged */
};

/* Frames of up to 16 MiB (a big array on the stack is a common way to grow
 * one): the CFA offset has 21 bits, 16 in cfa and 5 in type's top bits. */
#define MEMTOP_ROW_CFA_MAX ((1U << 21) - 1)
static inline __u8 memtop_row_type(const struct memtop_unwind_row *r)
{
	return r->type & 7;
}
static inline __u32 memtop_row_cfa(const struct memtop_unwind_row *r)
{
	return r->cfa | ((__u32)(r->type >> 3) << 16);
}
static inline void memtop_row_set(struct memtop_unwind_row *r, __u8 type, __u32 cfa)
{
	r->type = (__u8)(type | ((cfa >> 16) << 3));
	r->cfa = (__u16)cfa;
}

/* A mapped file as the kernel names it: the inode's super block device
 * (kernel dev_t, MAJOR << 20 | MINOR) and inode number. */
struct memtop_file_key {
	__u64 dev;
	__u64 ino;
};

enum memtop_unwind_state {
	MEMTOP_UNWIND_REQUESTED = 0, /* asked user space for a table, none yet */
	MEMTOP_UNWIND_READY = 1,     /* rows[row_start, row_start + row_count) */
	MEMTOP_UNWIND_FAILED = 2,    /* no table can be had: frame pointers only */
};

struct memtop_unwind_file {
	__u32 state;
	__u32 row_start;
	__u32 row_count;
	__u32 pad;
};

enum memtop_event_type {
	MEMTOP_EV_EXIT = 1,        /* process exited: its final numbers */
	MEMTOP_EV_EXEC = 2,        /* process exec'd: final numbers of the old image */
	MEMTOP_EV_NEW_STACK = 3,   /* a stack was stored: user space checks its maps cover it */
	MEMTOP_EV_NEED_UNWIND = 4, /* a frame ran through a file with no unwind table: build one */
	MEMTOP_EV_NEW_PY_STACK =
	        5, /* Python frames were stored under stack_id: name them while the process lives */
	MEMTOP_EV_PY_HOOKS_LOST = 6, /* the sampler's hooks of CPython's allocator were replaced (tgid) */
};

/* NEW_STACK and NEW_PY_STACK, the events of every first-seen stack (the
 * most frequent by far), carry only this: 32 bytes a record in the ring
 * instead of struct memtop_event's 176, so a burst of new stacks fills
 * the ring (events_lost) 5.5x later. The first two fields are memtop_event's. */
struct memtop_stack_event {
	__u32 type;
	__u32 tgid;
	__u32 epoch; /* NEW_STACK: the heap-traced process's epoch, 0 when none */
	__u32 pad;
	__u64 stack_id; /* NEW_STACK: the stacks entry; NEW_PY_STACK: the py_stacks entry */
};

struct memtop_event {
	__u32 type;
	__u32 tgid;
	__u32 epoch;
	__u32 mm_id; /* EXIT, EXEC: the address space whose mappings end */
	__s64 heap_bytes;
	__s64 heap_peak_bytes;
	__u64 allocs_total;
	__u64 frees_total;
	char comm[16];
	__s64 rss[4];                /* EXIT: resident memory by enum memtop_rss_member */
	__s64 rss_peak_bytes;        /* EXIT: and its peak */
	struct memtop_file_key file; /* NEED_UNWIND: the file */
	__s64 mapped_bytes;          /* EXIT: anonymous memory mapped (bpf/mappings.h) */
	__s64 mapped_peak_bytes;     /* EXIT: and its peak */
	__s64 py_bytes;              /* EXIT: the Python domain (bpf/pymalloc.h) */
	__s64 py_peak_bytes;
	__u64 py_allocs_total;
	__u64 py_frees_total;
};

/* Resident memory of one process, from kmem:rss_stat: the kernel's own
 * counters, read whenever one of them changes (no polling of /proc). */
enum memtop_rss_member {
	MEMTOP_RSS_FILE = 0,  /* MM_FILEPAGES */
	MEMTOP_RSS_ANON = 1,  /* MM_ANONPAGES */
	MEMTOP_RSS_SWAP = 2,  /* MM_SWAPENTS */
	MEMTOP_RSS_SHMEM = 3, /* MM_SHMEMPAGES */
};

struct memtop_rss {
	__s64 bytes[4];   /* by enum memtop_rss_member */
	__s64 peak_bytes; /* highest file + anon + shmem of this address space since memtop started */
	__u64 events;
	__u32 mm_id; /* the address space these numbers are of (mm and process start) */
	__u32 pad;
};

/*
 * Python frames (bpf/python_frames.h). A CPython process gets a
 * memtop_py_proc from the loader (user/python/layout.cpp): where its current
 * thread state pointer lives and the offsets of the fields the walk follows,
 * from a table per CPython version. Each heap stack taken in it records the
 * thread's interpreter frames beside the native ones, in py_stacks under the
 * same stack id (the id hashes both).
 */
#define MEMTOP_PY_MAX_FRAMES 32
/* py_hold's values (bpf/python_frames.h: py_finalize). */
#define MEMTOP_PY_HOLD_ARMED 1
#define MEMTOP_PY_HOLD_SENT  2

struct memtop_py_proc {
	__u64 tstate_addr;    /* address of the current PyThreadState pointer */
	__u16 tstate_cframe;  /* PyThreadState.cframe (3.11) */
	__u16 tstate_thread;  /* PyThreadState.thread_id: pthread_self(), checked against fsbase */
	__u16 cframe_current; /* _PyCFrame.current_frame */
	__u16 frame_code;     /* _PyInterpreterFrame.f_code */
	__u16 frame_previous; /* _PyInterpreterFrame.previous */
	__u16 frame_instr;    /* _PyInterpreterFrame.prev_instr */
	__u16 frame_is_entry; /* _PyInterpreterFrame.is_entry (bool) */
	__u16 frame_owner;    /* _PyInterpreterFrame.owner (char) */
	__u32 owner_skip; /* owner value of frames that are no Python code (3.12's C-stack shims); 0xff: none
	                   */
	__u32 pad;
};

/* instr's bit 0 (instructions are 2-byte code units): the frame is the first
 * one a call of the evaluation loop pushed (is_entry). */
#define MEMTOP_PY_ENTRY 1ULL

struct memtop_py_frame {
	__u64 code;  /* PyCodeObject address */
	__u64 instr; /* prev_instr: the instruction running | MEMTOP_PY_ENTRY */
};

struct memtop_py_stack {
	__u32 tgid; /* the process that stored it first (naming reads its memory) */
	__u32 nr;   /* frames used, innermost first */
	struct memtop_py_frame frames[MEMTOP_PY_MAX_FRAMES];
};

#endif /* MEMTOP_H */
