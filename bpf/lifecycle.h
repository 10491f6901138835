/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Process lifecycle: an exec or the last thread's exit ends what the other
 * concerns keep per process (the heap record, resident memory, mappings, the
 * unwinder's mapping cache) and hands the final numbers to user space in one
 * event. tp_btf programs see the task directly, no tracefs needed. And the
 * end of a CPython memtop runs: held at Py_FinalizeEx (py_finalize).
 */
#ifndef MEMTOP_LIFECYCLE_H
#define MEMTOP_LIFECYCLE_H

#include "common.h"
#include "rss.h"
#include "heap.h"
#ifndef MEMTOP_COMPAT
#include "mappings.h"
#include "python_frames.h"
#include "unwind.h"

/* CPython processes memtop runs and ptraces (`-- CMD`), keyed by tgid:
 * MEMTOP_PY_HOLD_ARMED while memtop wants them held at Py_FinalizeEx,
 * MEMTOP_PY_HOLD_SENT once py_finalize asked. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} py_hold SEC(".maps");

/* Py_FinalizeEx's entry in a CPython memtop ptraces: the interpreter is
 * about to free its modules' code objects, which the Python frames of its
 * stored stacks name (user space reads them from the process, and one
 * freed is a frame with no name). A signal to the thread makes it stop for
 * its tracer before it goes on: memtop names every Python stack of the
 * process, then resumes it with the signal discarded (TracedCommand), so
 * the program never sees it. SIGURG because, were memtop to die in
 * between, the kernel would deliver it and its default action is to be
 * ignored. Only the main thread: the one memtop traces. */
SEC("uprobe")
int py_finalize(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u32 *hold;

	use_task_stack(ctx);
	if ((__u32)id != tgid)
		return 0;
	hold = bpf_map_lookup_elem(&py_hold, &tgid);
	if (!hold || *hold != MEMTOP_PY_HOLD_ARMED)
		return 0;
	*hold = MEMTOP_PY_HOLD_SENT;
	bpf_send_signal_thread(23 /* SIGURG */);
	return 0;
}
#endif

SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct memtop_map_proc *mp = NULL;
#ifndef MEMTOP_COMPAT
	bpf_map_delete_elem(&vma_caches, &tgid); /* a new image, new mappings */
	/* The new image may run no CPython, or another one: user space
	 * describes it again if it does (at -- CMD's exec stop, or on its
	 * first stack under --heap-all). */
	bpf_map_delete_elem(&py_procs, &tgid);
	bpf_map_delete_elem(&py_hold, &tgid);
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
	/* Its Python layout: the entry goes with the process, so py_procs
	 * holds the CPython processes alive (a reused pid is no CPython until
	 * user space says so). */
	bpf_map_delete_elem(&py_procs, &tgid);
	bpf_map_delete_elem(&py_hold, &tgid);
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
	bpf_map_delete_elem(&targets, &tgid);
	if (!p && !r && !mp)
		return 0;
	emit(MEMTOP_EV_EXIT, tgid, p, r, mp);
	if (p)
		bpf_map_delete_elem(&procs, &tgid);
	if (r) {
		bpf_map_delete_elem(&rss, &tgid);
		__sync_fetch_and_add(&rss_gen, 1); /* no rss_stat note of it may match again */
	}
#ifndef MEMTOP_COMPAT
	if (mp)
		bpf_map_delete_elem(&map_procs, &tgid);
#endif
	return 0;
}

#endif /* MEMTOP_LIFECYCLE_H */
