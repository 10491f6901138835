// Owners for what libbpf hands out: a link detaches and a ring buffer is
// freed when its owner goes, on every path, throws included.
#pragma once

#include <bpf/libbpf.h>

#include <memory>

namespace memtop {

struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

struct RingBufferDeleter {
    void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

}  // namespace memtop
