// The kernel's records (bpf/memtop.h) as model records: one conversion each,
// shared by the map reader and the event decoder.
#pragma once

#include "memtop.h"
#include "model/process.h"

namespace memtop {

// Resident memory as the kernel side lays it out (enum memtop_rss_member).
RssStats rss_from_kernel(const __s64 bytes[4], __s64 peak);

// A heap-traced process's numbers (the procs map).
ProcessStats process_from_kernel(uint32_t tgid, const memtop_proc& p);

}  // namespace memtop
