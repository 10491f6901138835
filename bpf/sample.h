/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --sample BYTES: byte-sampled heap tracing (docs/hot-path.md, "Sampled
 * heap tracing"; field notes section 4).
 *
 * Every allocated byte is sampled with probability 1/T (a Poisson process
 * over bytes with mean interval T = heap_sample_bytes). Each thread keeps a
 * countdown of bytes to its next sample (call_state.countdown), drawn from an
 * exponential with mean T; each outermost allocator call subtracts its size,
 * and the call whose size takes the countdown to zero or below is sampled,
 * after which a fresh countdown is drawn (the overshoot is dropped: by the
 * exponential's lack of memory, a call of size s is then sampled with
 * probability p(s) = 1 - exp(-s/T) whatever came before it).
 *
 * The kernel keeps only integers: the sampled blocks' true sizes, summed per
 * (process, stack, size) in `aggs` (memtop_agg_key.size). User space weights
 * each size by 1/p(size) (user/kernel/sampling.cpp), so every figure memtop
 * shows is an unbiased estimate.
 */
#ifndef MEMTOP_SAMPLE_H
#define MEMTOP_SAMPLE_H

#include "common.h"
#include "sample_math.h"

/* Mean bytes between samples; 0: exact (every call recorded). */
const volatile __u64 heap_sample_bytes = 0;

/* log2(1 + i/256) in units of 2^-24, i = 0..256, set by the loader (the BPF
 * side has no floating point). */
const volatile __u32 log2_frac_q24[257] = {};

static __always_inline __u64 exp_draw_q24(void)
{
	return exp_q24_of(bpf_get_prandom_u32(), log2_frac_q24);
}

/* Bytes to the next sample: exponential with mean `mean` (< 2^32, so that
 * mean * 2^29 stays within 64 bits). */
static __always_inline __s64 next_countdown_of(__u64 mean)
{
	return (__s64)((mean * exp_draw_q24()) >> 24);
}

/* One call of `size` bytes against a countdown of mean `mean`: 1 if it is
 * sampled (and a fresh countdown is drawn). Shared by the heap's countdown
 * and the Python domain's (pymalloc.h), each in its own call_state fields. */
static __always_inline int sample_countdown(__s64 *countdown, __u32 *set, __u64 mean, __u64 size)
{
	/* p(0) = 0: a zero-byte block can carry no weight; it is never sampled
	 * (and its count is not estimated). */
	if (!size)
		return 0;
	if (!*set) {
		*countdown = next_countdown_of(mean);
		*set = 1;
	}
	/* A size beyond 2^62 (a failing calloc or reallocarray) is sampled; it
	 * returns NULL and is not recorded anyway. */
	*countdown -= size > (1ULL << 62) ? (1LL << 62) : (__s64)size;
	if (*countdown > 0)
		return 0;
	*countdown = next_countdown_of(mean);
	return 1;
}

/* Whether an outermost allocator call of `size` bytes is recorded. Exact
 * mode: always. */
static __always_inline int sample_call(struct call_state *st, __u64 size)
{
	if (!heap_sample_bytes)
		return 1;
	return sample_countdown(&st->countdown, &st->countdown_set, heap_sample_bytes, size);
}

#ifndef MEMTOP_COMPAT
/* --python-objects with -p, --heap-all, --cgroup, --container (and -- CMD
 * where the in-process sampler is not loaded): Python objects sampled at
 * pymalloc's sites every py_sample_bytes on average, on a countdown of the
 * thread's own (the heap's may be exact or another mean); 0: every object
 * counted. */
const volatile __u64 py_sample_bytes = 0;

static __always_inline int sample_py_object(struct call_state *st, __u64 size)
{
	if (!py_sample_bytes)
		return 1;
	return sample_countdown(&st->py_countdown, &st->py_countdown_set, py_sample_bytes, size);
}
#endif

#endif /* MEMTOP_SAMPLE_H */
