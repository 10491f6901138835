// /proc/PID/status: its Name line is the comm the traced process set
// (prctl(PR_SET_NAME), 15 bytes of anything but NUL).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "procinfo/proc_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto st = memtop::parse_proc_status(text);
    if (st && (st->vm_rss < 0 || st->vm_hwm < 0 || st->rss_anon < 0 || st->vm_swap < 0)) abort();
    return 0;
}
