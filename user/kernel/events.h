// What the BPF programs tell user space as it happens (the ring buffer), as
// calls on a sink: the only place that reads struct memtop_event.
#pragma once

#include <cstdint>

#include "model/process.h"

namespace memtop {

// A mapped file as the kernel names it: the kernel's dev_t and the inode.
struct FileKey {
    uint64_t dev = 0, ino = 0;
};

class EventSink {
public:
    // A process ended: its final numbers. epoch 0: it was not heap-traced
    // (its resident memory and mappings are there all the same).
    virtual void process_ended(const ProcessStats& final_numbers) = 0;
    // A process exec'd: the old image's heap (epoch) and address space end.
    virtual void process_exec(const EndedInstance& old_image) = 0;
    // A stack was stored for this process instance under stack_id: its
    // maps are worth reading while it lives.
    virtual void stack_stored(uint32_t pid, uint32_t epoch, uint64_t stack_id) = 0;
    // Python frames were stored under stack_id for process `pid`: their
    // code objects are worth naming while it lives.
    virtual void python_stack_stored(uint32_t /*pid*/, uint64_t /*stack_id*/) {}
    // CPython replaced the in-process sampler's allocator hooks in `pid`
    // (its debug hooks, PYTHONMALLOC): its Python domain is incomplete.
    virtual void python_hooks_lost(uint32_t /*pid*/) {}
    // A stack walk met a file with no unwind table in process `pid`.
    virtual void unwind_table_needed(uint32_t pid, const FileKey& file) = 0;

protected:
    ~EventSink() = default;
};

// Decodes one ring-buffer record and calls the sink; records of another
// size or type are ignored. Returns 0 (what libbpf's callback wants).
int dispatch_event(EventSink& sink, const void* data, size_t size);

}  // namespace memtop
