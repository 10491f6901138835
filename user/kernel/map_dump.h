// Copying a BPF hash map out: every (key, value), in batches of 4096 per
// syscall (Linux 5.6+), else one get_next_key + lookup per entry. A purge
// walks the whole allocs map, so this matters with --heap-all.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <utility>
#include <vector>

namespace memtop {

template <typename K, typename V>
std::vector<std::pair<K, V>> dump_map(int fd) {
    std::vector<std::pair<K, V>> out;
    constexpr uint32_t kBatch = 4096;
    std::vector<K> keys(kBatch);
    std::vector<V> values(kBatch);
    K out_batch{};
    bool first = true, batched = true;
    for (;;) {
        uint32_t count = kBatch;
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_lookup_batch(fd, first ? nullptr : &out_batch, &out_batch, keys.data(), values.data(), &count,
                                       &opts);
        if (err && errno != ENOENT) {
            batched = first;  // unsupported: walk instead (only if nothing was read yet)
            break;
        }
        for (uint32_t i = 0; i < count; i++) out.emplace_back(keys[i], values[i]);
        first = false;
        if (err) break;  // ENOENT: that was the last batch
    }
    if (batched && !first) return out;
    out.clear();
    K key{}, next{};
    K* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        V v;
        if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.emplace_back(next, v);
        key = next;
        prev = &key;
    }
    return out;
}

template <typename K, typename V>
std::vector<K> dump_keys(int fd) {
    std::vector<K> out;
    for (auto& kv : dump_map<K, V>(fd)) out.push_back(kv.first);
    return out;
}

}  // namespace memtop
