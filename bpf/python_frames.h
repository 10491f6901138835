/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python frames in heap stacks: for a CPython process the loader described
 * (py_procs), the current thread's interpreter frames are read at the
 * allocation, beside the native walk, because the frames are gone by report
 * time. Only (code object, instruction) pairs are kept: naming them (the
 * code object's name, file and line table) is user space's, while the
 * process lives (user/python/).
 *
 * The walk (CPython 3.11's layout; the offsets come from the loader's table,
 * user/python/layout.cpp):
 *   *tstate_addr (the thread holding the GIL) -> PyThreadState, accepted only
 *   if its thread_id (pthread_self()) is this thread's fsbase: a thread
 *   allocating without the GIL gets no Python frames, never another
 *   thread's; -> cframe -> current_frame -> _PyInterpreterFrame, then
 *   `previous` up to MEMTOP_PY_MAX_FRAMES frames.
 *
 * Cost for a process that is no CPython: an array lookup per walked
 * allocation (python_process). Not in the compat build (Linux 5.10: no task storage for the
 * scratch record, no BTF task access for fsbase).
 */
#ifndef MEMTOP_PYTHON_FRAMES_H
#define MEMTOP_PYTHON_FRAMES_H

#include "common.h"

#ifndef MEMTOP_COMPAT

/* CPython processes, keyed by tgid: filled by the loader when it attaches
 * (or finds one under --heap-all, --cgroup); deleted at the process's exit
 * and exec (lifecycle.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct memtop_py_proc);
} py_procs SEC(".maps");

/* Changed by user space after every change to py_procs (Tracer::
 * watch_python): a thread looks py_procs up again only then (python_process). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} py_procs_gen SEC(".maps");

/*
 * Whether the current thread's process is a CPython in py_procs: the answer
 * of its last lookup, kept in the thread's call_state until py_procs changes.
 * So a process that is no CPython pays an array lookup (inlined by the
 * verifier) per walked allocation, not a failed hash lookup and a call.
 * User space changes py_procs first and the generation after: a thread that
 * read the old generation and missed the new entry looks again.
 */
static __always_inline int python_process(struct call_state *st, __u32 tgid)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&py_procs_gen, &zero);
	__u32 gen = (g ? *g : 0) + 1; /* + 1: a new thread's 0 never matches */
	if (st->py_gen != gen) {
		st->py_on = bpf_map_lookup_elem(&py_procs, &tgid) != NULL;
		st->py_gen = gen;
	}
	return st->py_on;
}

/* Python frames of a heap stack, under the stack's id (the same id as in
 * `stacks`). Sized by the loader like `stacks`; purged with them; allocated
 * as used (most hosts run few CPythons). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, __u64);
	__type(value, struct memtop_py_stack);
} py_stacks SEC(".maps");

/* The frame record being built (520 bytes: more than the program stack
 * allows), per thread: uprobe programs can be preempted, so a per-CPU buffer
 * could be overwritten by another thread's walk. */
struct py_scratch {
	struct memtop_py_stack s;
	__u8 hdr[128]; /* one _PyInterpreterFrame's first fields */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct py_scratch);
} py_scratches SEC(".maps");

/* A field of the frame header at an offset from the loader's table; the
 * masks bound it inside hdr for the verifier. */
static __always_inline __u64 hdr_u64(const struct py_scratch *x, __u16 off)
{
	return *(const __u64 *)(x->hdr + (off & 0x78));
}

static __always_inline __u8 hdr_u8(const struct py_scratch *x, __u16 off)
{
	return x->hdr[off & 0x7f];
}

/*
 * The stack id of a heap stack whose native walk hashed to `id`: unchanged
 * for a process that is no known CPython or a thread with no Python frame
 * running; else `id` mixed with every (code, instruction) pair, and the
 * frames stored in py_stacks (once per id; user space is told, to name them).
 *
 * A global function: the verifier checks it once, on its own, rather than
 * once per state the native walk before it leaves (which is over its
 * million-instruction budget with a 32-frame loop here).
 */
__noinline __u64 python_frames(__u64 id, __u32 tgid)
{
	struct memtop_py_proc *cfg = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!cfg)
		return id;

	__u64 tstate = 0, thread = 0, cframe = 0, frame = 0;
	if (bpf_probe_read_user(&tstate, sizeof(tstate), (void *)cfg->tstate_addr) || !tstate)
		return id;
	struct task_struct *task = bpf_get_current_task_btf();
	if (bpf_probe_read_user(&thread, sizeof(thread), (void *)(tstate + cfg->tstate_thread)) ||
	    thread != task->thread.fsbase)
		return id;
	if (bpf_probe_read_user(&cframe, sizeof(cframe), (void *)(tstate + cfg->tstate_cframe)) || !cframe)
		return id;
	if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(cframe + cfg->cframe_current)) || !frame)
		return id;

	struct py_scratch *x = bpf_task_storage_get(&py_scratches, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!x)
		return id;

	__u64 h = id;
	__u32 n = 0;
	for (__u32 i = 0; i < MEMTOP_PY_MAX_FRAMES && frame; i++) {
		/* 80 bytes: 3.11's header is 72, and a frame at the end of its
		 * data-stack chunk may have nothing readable after it. */
		if (bpf_probe_read_user(x->hdr, 80, (void *)frame))
			break;
		__u64 code = hdr_u64(x, cfg->frame_code);
		__u64 instr = hdr_u64(x, cfg->frame_instr) & ~MEMTOP_PY_ENTRY;
		if (hdr_u8(x, cfg->frame_is_entry))
			instr |= MEMTOP_PY_ENTRY;
		frame = hdr_u64(x, cfg->frame_previous);
		/* Every frame is kept, even one to skip (its owner says it runs
		 * no Python code; user space drops it): n stays equal to i, so
		 * the verifier walks the loop once, not once per (i, n) pair. */
		if (hdr_u8(x, cfg->frame_owner) == cfg->owner_skip)
			code = 0;
		x->s.frames[i].code = code;
		x->s.frames[i].instr = instr;
		h = (h ^ code) * 0x100000001b3ULL;
		h = (h ^ instr) * 0x100000001b3ULL;
		n = i + 1;
	}
	if (!n)
		return id;
	x->s.nr = n;
	x->s.tgid = tgid;
	h ^= h >> 29;
	if (!h)
		h = 1; /* 0 is the lost-stack bucket */
	if (bpf_map_update_elem(&py_stacks, &h, &x->s, BPF_NOEXIST) == 0) {
		emit_stack_event(MEMTOP_EV_NEW_PY_STACK, tgid, 0, h, 0);
	} else if (!bpf_map_lookup_elem(&py_stacks, &h)) {
		/* Full: the native stack alone, under its own id. */
		count(MEMTOP_CNT_STACK_MAP_FULL);
		return id;
	}
	return h;
}

#else
static __always_inline int python_process(struct call_state *st, __u32 tgid)
{
	return 0;
}

static __always_inline __u64 python_frames(__u64 id, __u32 tgid)
{
	return id;
}
#endif /* MEMTOP_COMPAT */

#endif /* MEMTOP_PYTHON_FRAMES_H */
