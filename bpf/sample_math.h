/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The exponential draw of --sample (sample.h), without BPF helpers so that
 * the unit tests run the very same code (tests/unit/test_sampling.cpp).
 * Needs __u32 and __u64 (vmlinux.h or <linux/types.h>).
 */
#ifndef MEMTOP_SAMPLE_MATH_H
#define MEMTOP_SAMPLE_MATH_H

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* -ln(U) * 2^24 for U uniform in (0, 1): U = v / 2^32 with v a random 32-bit
 * number (made odd, so never 0), -ln(U) = (32 - log2 v) * ln 2. log2 v is its
 * top bit's index plus log2 of the mantissa, from the table (log2(1 + i/256)
 * in units of 2^-24, i = 0..256) with linear interpolation (error below 3e-6; the tail is cut at 22.2 means,
 * where the exponential has 2e-10 of its mass). */
static __always_inline __u64 exp_q24_of(__u32 random, const volatile __u32 *log2_frac_q24)
{
	__u32 v = random | 1;
	__u32 n = 0, m = v;
	if (m >> 16) {
		n += 16;
		m >>= 16;
	}
	if (m >> 8) {
		n += 8;
		m >>= 8;
	}
	if (m >> 4) {
		n += 4;
		m >>= 4;
	}
	if (m >> 2) {
		n += 2;
		m >>= 2;
	}
	if (m >> 1)
		n += 1;
	/* Mantissa in [2^31, 2^32): its 8 bits below the top one index the
	 * table, the 23 below those interpolate. */
	__u32 norm = v << (31 - n);
	__u32 i = (norm >> 23) & 255;
	__u64 frac = norm & ((1U << 23) - 1);
	__u64 lo = log2_frac_q24[i], hi = log2_frac_q24[i + 1];
	__u64 log2v = ((__u64)n << 24) + lo + (((hi - lo) * frac) >> 23);
	__u64 minus_log2u = (32ULL << 24) - log2v; /* -log2(U), Q24 */
	return (minus_log2u * 11629080ULL) >> 24;  /* * ln 2 (11629080 / 2^24) */
}

#endif /* MEMTOP_SAMPLE_MATH_H */
