/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Growth stacks: which code makes resident memory grow, from sampled user
 * page faults (full build only: it needs task storage in tracing programs).
 */
#ifndef MEMTOP_GROWTH_H
#define MEMTOP_GROWTH_H

#ifdef MEMTOP_COMPAT
#error "growth.h is for the full build: Linux 5.10 has no task storage in tracing programs"
#endif

#include "common.h"
#include "stack.h"

/*
 * Which code grows resident memory: a user page fault on a page that is not
 * present maps a fresh page (first touch, or swap-in). Faults are sampled
 * per page with probability p = 1 - exp(-4096/T), the chance that a Poisson
 * process over bytes with mean interval T (--fault-sample) hits the page's
 * 4096 bytes; user space weights each sample by 4096/p bytes, so estimates
 * are unbiased. An unsampled fault costs one random number.
 */
const volatile __u32 fault_sample_threshold = 0; /* p * 2^32; 0: off */

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct memtop_stack);
} fault_stacks SEC(".maps");

/* Allocated as used (GFP_ATOMIC, or the BPF allocator's per-CPU caches on
 * 6.1+: a fault's interrupts-off context is fine for either). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16);
	__type(key, struct memtop_agg_key);
	__type(value, struct memtop_growth_val);
} growth SEC(".maps");

SEC("tp_btf/page_fault_user")
int BPF_PROG(page_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	if (!fault_sample_threshold || (error_code & 1 /* X86_PF_PROT: page present */))
		return 0;
	if (fault_sample_threshold != ~0U && bpf_get_prandom_u32() >= fault_sample_threshold)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == self_tgid)
		return 0;
	if (traced_only && !target_process(tgid))
		return 0;
	struct memtop_stack *s = bpf_task_storage_get(&fault_stacks, bpf_get_current_task_btf(), 0,
	                                              BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s) {
		count(MEMTOP_CNT_STATE_BUSY);
		return 0;
	}
	/* Interrupts are off here: one bpf_find_vma (see vma_caches). Keyed
	 * by address space (epoch = mm_id, as mappings.h's): the pages an
	 * image touched before an exec are not the new image's, and its frames
	 * are not in the new image's maps (-- CMD's own child, before the exec,
	 * showed as `?? (?)` in CMD's final report). */
	struct memtop_agg_key k = {.tgid = tgid, .epoch = current_mm_id(bpf_get_current_task_btf())};
	k.stack_id = walk_user_stack(s, regs->ip, regs->sp, regs->bp, tgid, STACK_AT_FAULT, NULL);
	store_stack(&k.stack_id, s, tgid, NULL);
	struct memtop_growth_val *g = bpf_map_lookup_elem(&growth, &k);
	if (!g) {
		struct memtop_growth_val zero = {};
		bpf_map_update_elem(&growth, &k, &zero, BPF_NOEXIST);
		g = bpf_map_lookup_elem(&growth, &k);
		if (!g) {
			count(MEMTOP_CNT_AGG_MAP_FULL);
			return 0;
		}
	}
	__sync_fetch_and_add(&g->samples, 1);
	return 0;
}

#endif /* MEMTOP_GROWTH_H */
