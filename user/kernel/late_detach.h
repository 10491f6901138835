// Detaching what the kernel detaches slowly after memtop has exited.
#pragma once

#include <vector>

namespace memtop {

// Hands the descriptors `fds` to a child process that closes them once this
// process has exited, and returns; the caller then closes its own copies,
// which is quick, since the child's are the last ones. Used for the syscall
// tracepoints' links (Tracer::detach_after_exit): the kernel releases each
// one by waiting for RCU-tasks grace periods under its event_mutex, one
// event after another (~40 ms each here), which kept every memtop run ~0.2 s
// longer at its exit. The child, named memtop-detach, holds nothing else:
// no output, no map, no terminal. Returns false (nothing handed over; the
// caller closes them itself, slowly) if the child cannot be made.
bool close_after_exit(const std::vector<int>& fds);

}  // namespace memtop
