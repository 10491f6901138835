#include "kernel/records.h"

#include <cstring>

namespace memtop {

RssStats rss_from_kernel(const __s64 bytes[4], __s64 peak) {
    RssStats s;
    s.file = bytes[MEMTOP_RSS_FILE];
    s.anon = bytes[MEMTOP_RSS_ANON];
    s.shmem = bytes[MEMTOP_RSS_SHMEM];
    s.swap = bytes[MEMTOP_RSS_SWAP];
    s.peak = peak;
    return s;
}

ProcessStats process_from_kernel(uint32_t tgid, const memtop_proc& p) {
    ProcessStats s;
    s.pid = tgid;
    s.epoch = p.epoch;
    s.comm.assign(p.comm, strnlen(p.comm, sizeof p.comm));
    s.heap_bytes = p.heap_bytes;
    s.heap_peak_bytes = p.heap_peak_bytes;
    s.allocs_total = p.allocs_total;
    s.frees_total = p.frees_total;
    s.py_bytes = p.py_bytes;
    s.py_peak_bytes = p.py_peak_bytes;
    s.py_allocs_total = p.py_allocs_total;
    s.py_frees_total = p.py_frees_total;
    return s;
}

}  // namespace memtop
