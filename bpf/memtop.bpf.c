// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * memtop's kernel side, one header per concern:
 *   heap.h       exact per-stack heap accounting: the allocator probes
 *   lifecycle.h  exec and exit end a process's records, in one event
 *   rss.h        resident memory from the kernel's mm counters
 *   growth.h     which stacks fault fresh pages in (sampled)
 *   mappings.h   anonymous mmap/munmap/mremap/brk per process and stack
 * on top of stack.h (the user-stack walk and store; unwind.h, the unwinder)
 * and common.h (what they share).
 *
 * Built twice from this file: the full build, and with MEMTOP_COMPAT for
 * Linux 5.10 (BPF ISA v2, no task storage in tracing programs, no bpf_loop):
 * heap, lifecycle and resident memory only, with frame-pointer stacks.
 */
#include "heap.h"
#include "lifecycle.h"
#include "rss.h"
#ifndef MEMTOP_COMPAT
#include "growth.h"
#include "mappings.h"
#include "pymalloc.h"
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";
