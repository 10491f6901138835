// /proc/PID/cgroup and the container a cgroup path names: cgroup names are
// directories anyone with a delegated subtree (rootless containers,
// systemd --user) creates.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "procinfo/identity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string cg = memtop::cgroup_from_proc_cgroup(text);
    if (cg.find('\n') != std::string::npos) abort();
    memtop::container_id_from_cgroup(cg);
    // The path alone too: the hybrid fallback reads "0::" lines' paths as is.
    memtop::container_id_from_cgroup(text);
    return 0;
}
