// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Empty programs for the benchmark floor: attached where memtop attaches,
 * they measure what the traps cost with no work done in them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe")
int floor_entry(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int floor_return(void *ctx)
{
	return 0;
}
