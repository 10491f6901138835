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

// Does the running kernel know uprobe_multi links? (its BTF has the link type)
bool kernel_has_uprobe_multi();

// The attach type programs must be loaded with to be used here.
constexpr int kAttachTraceUprobeMulti = 48;  // BPF_TRACE_UPROBE_MULTI

// Creates the link; returns its fd, or -errno.
int attach_uprobe_multi(int prog_fd, const std::string& path, const std::vector<uint64_t>& offsets, bool retprobe,
                        int pid);

}  // namespace memtop
