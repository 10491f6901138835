#include "kernel/events.h"

#include <cstring>

#include "kernel/records.h"
#include "memtop.h"

namespace memtop {

int dispatch_event(EventSink& sink, const void* data, size_t size) {
    // A stack event is the short record (bpf/memtop.h); the rest are whole.
    if (size >= sizeof(memtop_stack_event)) {
        memtop_stack_event s;
        std::memcpy(&s, data, sizeof s);
        if (s.type == MEMTOP_EV_NEW_STACK) {
            sink.stack_stored(s.tgid, s.epoch, s.stack_id);
            return 0;
        }
        if (s.type == MEMTOP_EV_NEW_PY_STACK) {
            sink.python_stack_stored(s.tgid, s.stack_id);
            return 0;
        }
        if (s.type == MEMTOP_EV_PY_HOOKS_LOST) {
            sink.python_hooks_lost(s.tgid);
            return 0;
        }
    }
    if (size < sizeof(memtop_event)) return 0;
    memtop_event e;
    std::memcpy(&e, data, sizeof e);
    switch (e.type) {
        case MEMTOP_EV_EXIT: {
            ProcessStats p;
            p.pid = e.tgid;
            p.epoch = e.epoch;
            p.comm.assign(e.comm, strnlen(e.comm, sizeof e.comm));
            p.heap_bytes = e.heap_bytes;
            p.heap_peak_bytes = e.heap_peak_bytes;
            p.allocs_total = e.allocs_total;
            p.frees_total = e.frees_total;
            p.py_bytes = e.py_bytes;
            p.py_peak_bytes = e.py_peak_bytes;
            p.py_allocs_total = e.py_allocs_total;
            p.py_frees_total = e.py_frees_total;
            p.heap_traced = e.epoch != 0;
            p.exited = true;
            p.mm_id = e.mm_id;
            p.rss = rss_from_kernel(e.rss, e.rss_peak_bytes);
            p.mapped_bytes = e.mapped_bytes;
            p.mapped_peak_bytes = e.mapped_peak_bytes;
            sink.process_ended(p);
            break;
        }
        case MEMTOP_EV_EXEC:
            sink.process_exec({e.tgid, e.epoch, e.mm_id});
            break;
        case MEMTOP_EV_NEED_UNWIND:
            sink.unwind_table_needed(e.tgid, {e.file.dev, e.file.ino});
            break;
    }
    return 0;
}

}  // namespace memtop
