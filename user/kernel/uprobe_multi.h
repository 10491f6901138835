// uprobe_multi links (Linux 6.6+): every offset of one file for one program
// in a single link. libbpf 1.1 (Debian 12) predates them, so they are made
// with the raw bpf() syscall here. Worth it: a classic perf-event uprobe
// waits for an RCU grace period when it is detached (~55 ms each here, one
// after another), a multi link waits once for all its offsets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memtop {

// Does the running kernel know uprobe_multi links, filtered by process?
// (asked of the kernel: uprobe_multi.cpp)
bool kernel_has_uprobe_multi();

// Uprobe sessions (Linux 6.13): a uprobe_multi link whose program runs at
// entry and, when it returned 0 there, again at the return of that call
// (bpf/heap.h). Does the running kernel know them? (asked of the kernel)
bool kernel_has_uprobe_session();

// The attach types programs must be loaded with to be used here.
constexpr int kAttachTraceUprobeMulti = 48;    // BPF_TRACE_UPROBE_MULTI
constexpr int kAttachTraceUprobeSession = 57;  // BPF_TRACE_UPROBE_SESSION

// Creates the link; returns its fd, or -errno. session: a session link (the
// program must have been loaded with kAttachTraceUprobeSession; retprobe is
// then false). cookies: one per offset (bpf_get_attach_cookie), or null.
int attach_uprobe_multi(int prog_fd, const std::string& path, const std::vector<uint64_t>& offsets, bool retprobe,
                        int pid, bool session = false, const std::vector<uint64_t>* cookies = nullptr);

}  // namespace memtop
