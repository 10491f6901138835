// libbpf's messages: all of them on stderr with -v; otherwise the last few
// warnings are kept, so an error can say what libbpf said last.
#pragma once

#include <string>
#include <vector>

#include "kernel/bpf_handles.h"
#include "util/unique_fd.h"

namespace memtop {

void capture_libbpf_log(bool verbose);
bool libbpf_verbose();
// " (libbpf's last warning; -v shows libbpf's whole log)", or "" with -v or
// when libbpf said nothing.
std::string libbpf_hint();

// Detaches links. Each uprobe detach waits for an RCU grace period (~70 ms
// here); one after another, 30 probes took two seconds, so many are
// detached from several threads at once.
void destroy_links(std::vector<LinkPtr>& links);
// The same for uprobe_multi links (link fds): closing one waits for the
// grace periods of its uprobes' unregistering (~40 ms each here), so a
// -- CMD run's dozen links took half a second at exit one after another.
void close_links(std::vector<UniqueFd>& links);

}  // namespace memtop
