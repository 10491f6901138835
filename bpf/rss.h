/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Resident memory per process, from the kernel's own mm counters: read at
 * every kmem:rss_stat event (rss_stat), and made exact before each report on
 * kernels whose counters are per-CPU (the rss_exact task iterator, full build
 * only). Entries end with their process (lifecycle.h).
 */
#ifndef MEMTOP_RSS_H
#define MEMTOP_RSS_H

#include "common.h"

/* Keyed by tgid; sized by the loader like the process table (--max-procs). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 15);
	__type(key, __u32);
	__type(value, struct memtop_rss);
} rss SEC(".maps");

/* mm_struct's counters before and after Linux 6.2 made them per-CPU. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));
struct mm_struct___new {
	struct percpu_counter rss_stat[4];
} __attribute__((preserve_access_index));

/*
 * The mm counters in pages: the values kmem:rss_stat itself reports. Since
 * 6.2 a counter is a percpu_counter and this is its folded part; each CPU
 * may hold up to a batch of pages not yet folded in, which /proc/PID/status
 * adds (41 pages apart here on a 2-CPU VM). Adding them needs per-CPU
 * offsets, reachable only through per-CPU ksyms (CONFIG_KALLSYMS_ALL).
 */
static __always_inline void mm_counters(struct mm_struct *mm, __s64 pages[4])
{
	/* One branch per layout, each with constant indexes: the relocations
	 * of the layout the kernel lacks stay in dead code. The per-CPU layout
	 * (6.2+, where this runs at every first touch of a page) is read with
	 * direct loads, mm being the tracepoint's own BTF pointer; the old one
	 * with helper reads, which verifiers before 6.2 need for the atomics
	 * (and there the event comes only every 64 counter changes a thread). */
	if (bpf_core_field_exists(((struct mm_struct___old *)mm)->rss_stat)) {
		struct mm_struct___old *o = (void *)mm;
		pages[0] = BPF_CORE_READ(o, rss_stat.count[0].counter);
		pages[1] = BPF_CORE_READ(o, rss_stat.count[1].counter);
		pages[2] = BPF_CORE_READ(o, rss_stat.count[2].counter);
		pages[3] = BPF_CORE_READ(o, rss_stat.count[3].counter);
	} else {
		struct mm_struct___new *n = (void *)mm;
		pages[0] = n->rss_stat[0].count;
		pages[1] = n->rss_stat[1].count;
		pages[2] = n->rss_stat[2].count;
		pages[3] = n->rss_stat[3].count;
	}
}

/* A process's resident-memory entry for address space `mm_id`, created at
 * first sight; NULL (and counted) when the map is full. Entries are keyed by
 * pid but hold the address space they describe: an entry found with another
 * one (the pid was reused, or the process exec'd and its new mm starts its
 * own peak, as VmHWM does) starts afresh instead of handing its numbers on. */
static __always_inline struct memtop_rss *rss_entry(__u32 tgid, __u32 mm_id)
{
	struct memtop_rss *r = bpf_map_lookup_elem(&rss, &tgid);
	if (r) {
		if (r->mm_id != mm_id) {
			for (int i = 0; i < 4; i++)
				r->bytes[i] = 0;
			r->peak_bytes = 0;
			r->events = 0;
			r->mm_id = mm_id;
		}
		return r;
	}
	struct memtop_rss fresh = {.mm_id = mm_id};
	bpf_map_update_elem(&rss, &tgid, &fresh, BPF_NOEXIST);
	r = bpf_map_lookup_elem(&rss, &tgid);
	if (!r)
		count(MEMTOP_CNT_RSS_MAP_FULL);
	return r;
}

#ifndef MEMTOP_COMPAT
/*
 * Exact resident memory on kernels whose counters are per-CPU (6.2+).
 *
 * rss_stat sees a counter's folded part; each CPU may hold up to a batch of
 * pages not yet folded in, which /proc/PID/status adds. Adding them needs
 * each CPU's per-CPU offset, and BPF gets those only through per-CPU ksyms
 * (CONFIG_KALLSYMS_ALL, which not every kernel has). memtop derives them
 * instead from a per-CPU array of its own: bpf_map_lookup_percpu_elem
 * (5.19) gives CPU i's copy of its value, and the array's per-CPU pointer
 * (bpf_array.pptrs[0], read with CO-RE) is that copy minus CPU i's offset.
 *
 * A task iterator, run by user space just before each report, writes every
 * process's exact counters into `rss` (and raises the peak with them). Per
 * report that is one pass over the processes, never work per page fault.
 */
const volatile __u32 nr_cpus = 0; /* possible CPUs; 0: counters are not per-CPU, or no way to sum them */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_offsets_probe SEC(".maps");

struct percpu_sum {
	__u64 base;        /* the probe array's per-CPU pointer */
	__u64 counters[4]; /* each counter's per-CPU pointer */
	__s64 sum[4];
};

static long percpu_sum_step(__u32 cpu, void *data)
{
	struct percpu_sum *ps = data;
	__u32 zero = 0;
	if (cpu >= nr_cpus)
		return 1;
	void *mine = bpf_map_lookup_percpu_elem(&cpu_offsets_probe, &zero, cpu);
	if (!mine)
		return 0;    /* a possible CPU that is not there */
	__u64 mine_addr = 0; /* as a number, like the map's address below */
	if (bpf_probe_read_kernel(&mine_addr, sizeof(mine_addr), &mine))
		return 0;
	__u64 off = mine_addr - ps->base;
	for (int k = 0; k < 4; k++) {
		__s32 v = 0;
		if (ps->counters[k] &&
		    bpf_probe_read_kernel(&v, sizeof(v), (void *)(ps->counters[k] + off)) == 0)
			ps->sum[k] += v;
	}
	return 0;
}

SEC("iter/task")
int rss_exact(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task || !nr_cpus || task->pid != task->tgid)
		return 0;
	struct mm_struct *mm = task->mm;
	if (!mm)
		return 0; /* a kernel thread, or exiting */
	/* Before 6.2 the counters are atomics: rss_stat's values are exact. */
	if (bpf_core_field_exists(((struct mm_struct___old *)mm)->rss_stat))
		return 0;
	struct mm_struct___new *n = (void *)mm;
	struct percpu_sum ps = {};
	/* The map's address as a number: the verifier allows no arithmetic on
	 * a map pointer, so it is copied out of the stack by a helper. */
	void *probe = &cpu_offsets_probe;
	__u64 probe_addr = 0;
	if (bpf_probe_read_kernel(&probe_addr, sizeof(probe_addr), &probe) ||
	    bpf_probe_read_kernel(&ps.base, sizeof(ps.base),
	                          (void *)(probe_addr + bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	ps.sum[0] = BPF_CORE_READ(n, rss_stat[0].count);
	ps.sum[1] = BPF_CORE_READ(n, rss_stat[1].count);
	ps.sum[2] = BPF_CORE_READ(n, rss_stat[2].count);
	ps.sum[3] = BPF_CORE_READ(n, rss_stat[3].count);
	ps.counters[0] = (__u64)BPF_CORE_READ(n, rss_stat[0].counters);
	ps.counters[1] = (__u64)BPF_CORE_READ(n, rss_stat[1].counters);
	ps.counters[2] = (__u64)BPF_CORE_READ(n, rss_stat[2].counters);
	ps.counters[3] = (__u64)BPF_CORE_READ(n, rss_stat[3].counters);
	bpf_loop(nr_cpus, percpu_sum_step, &ps, 0);

	struct memtop_rss *r =
	        rss_entry(task->tgid, mm_instance_id((__u64)BPF_CORE_READ(task, mm),
	                                             BPF_CORE_READ(task, group_leader, start_time)));
	if (!r)
		return 0;
	for (int k = 0; k < 4; k++)
		r->bytes[k] = ps.sum[k] > 0 ? ps.sum[k] << 12 : 0;
	raise_peak(&r->peak_bytes,
	           r->bytes[MEMTOP_RSS_FILE] + r->bytes[MEMTOP_RSS_ANON] + r->bytes[MEMTOP_RSS_SHMEM]);
	return 0;
}
#endif

/*
 * kmem:rss_stat fires whenever one of a process's resident-memory counters
 * changes. The BTF tracepoint hands over the mm itself: all four counters
 * are read here (the value the tracepoint prints), so every event leaves
 * the entry complete, and the
 * owner is found through mm->owner even when the event fires in another
 * task (fork copying pages, reclaim).
 */
SEC("tp_btf/rss_stat")
int BPF_PROG(rss_stat, struct mm_struct *mm, int member)
{
	/* It runs at every first touch of a page (Linux 6.2+ traces every
	 * counter change): BTF pointers are read with direct loads, not a
	 * bpf_probe_read_kernel call each (ten calls cost ~250 ns a fault). */
	__u32 tgid;
	__u64 leader_start;
	struct task_struct *owner = NULL;
	if (bpf_core_field_exists(mm->owner))
		owner = mm->owner;
	if (owner) {
		/* An mm that is no longer its owner's (torn down after exit_mm
		 * or an exec, or by a late mmput elsewhere) belongs to no live
		 * process: its entry went with the exit event, and must not
		 * come back for the next process to get this pid. */
		if (owner->mm != mm)
			return 0;
		tgid = owner->tgid;
		leader_start = owner->group_leader->start_time;
	} else {
		/* No mm->owner (CONFIG_MEMCG off): only the mm's own task's
		 * events are seen. bpf_get_current_task_btf is 5.11+. */
		struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
		if (BPF_CORE_READ(cur, mm) != mm)
			return 0;
		tgid = BPF_CORE_READ(cur, tgid);
		leader_start = BPF_CORE_READ(cur, group_leader, start_time);
	}
	/* The mm's address as a number, copied by a helper: the id below
	 * hashes it, and the verifier allows no arithmetic on the pointer. */
	__u64 mm_addr = 0;
	bpf_probe_read_kernel(&mm_addr, sizeof(mm_addr), &mm);

	struct memtop_rss *r = rss_entry(tgid, mm_instance_id(mm_addr, leader_start));
	if (!r)
		return 0;
	__s64 pages[4];
	mm_counters(mm, pages);
	for (int i = 0; i < 4; i++)
		r->bytes[i] = pages[i] > 0 ? pages[i] << 12 : 0; /* unfolded per-CPU parts can dip below 0 */
	__s64 resident = r->bytes[MEMTOP_RSS_FILE] + r->bytes[MEMTOP_RSS_ANON] + r->bytes[MEMTOP_RSS_SHMEM];
	r->events++;
	raise_peak(&r->peak_bytes, resident);
	return 0;
}

#endif /* MEMTOP_RSS_H */
