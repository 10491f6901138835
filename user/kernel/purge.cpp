#include "kernel/purge.h"

#include <bpf/bpf.h>

#include <set>
#include <unordered_set>
#include <utility>

#include "kernel/map_dump.h"
#include "memtop.h"

namespace memtop {

namespace {

// Deletes `keys` in one call (Linux 5.6+): on a busy host every report
// ends dozens of processes with hundreds of entries between them, a
// syscall each before. Where the kernel has no batch delete, or a key is
// gone meanwhile (the batch stops there), the rest one call each.
template <typename K>
void delete_keys(int fd, const std::vector<K>& keys) {
    if (keys.empty()) return;
    uint32_t done = static_cast<uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    if (bpf_map_delete_batch(fd, keys.data(), &done, &opts) == 0) return;
    for (size_t i = done; i < keys.size(); i++) bpf_map_delete_elem(fd, &keys[i]);
}

// Deletes the entries of an aggregate map (keyed by memtop_agg_key) that
// `dead` says belong to an ended instance; the stack ids of the others go
// into `referenced`.
template <typename V, typename Dead>
void purge_aggregates(int fd, const Dead& dead, std::unordered_set<uint64_t>& referenced) {
    if (fd < 0) return;
    std::vector<memtop_agg_key> gone;
    for (const auto& k : dump_keys<memtop_agg_key, V>(fd)) {
        if (dead(k))
            gone.push_back(k);
        else
            referenced.insert(k.stack_id);
    }
    delete_keys(fd, gone);
}

// Deletes the records (keyed by memtop_alloc_key) of ended instances.
template <typename V, typename Dead>
void purge_records(int fd, const Dead& dead) {
    if (fd < 0) return;
    std::vector<memtop_alloc_key> gone;
    for (const auto& k : dump_keys<memtop_alloc_key, V>(fd))
        if (dead(k)) gone.push_back(k);
    delete_keys(fd, gone);
}

// Every stack id some aggregate names now.
std::unordered_set<uint64_t> referenced_stacks(const KernelMaps& maps) {
    std::unordered_set<uint64_t> ids;
    auto none = [](const memtop_agg_key&) { return false; };
    purge_aggregates<memtop_agg_val>(maps.aggs, none, ids);
    purge_aggregates<memtop_growth_val>(maps.growth, none, ids);
    purge_aggregates<memtop_agg_val>(maps.mapped_aggs, none, ids);
    purge_aggregates<memtop_agg_val>(maps.py_aggs, none, ids);
    return ids;
}

}  // namespace

void purge_instances(const KernelMaps& maps, const std::vector<EndedInstance>& instances) {
    if (instances.empty()) return;
    std::set<std::pair<uint32_t, uint32_t>> heaps, address_spaces;
    std::set<uint32_t> pids, unknown_space;
    for (const auto& i : instances) {
        heaps.insert({i.pid, i.epoch});
        if (i.mm_id)
            address_spaces.insert({i.pid, i.mm_id});
        else
            unknown_space.insert(i.pid);
        pids.insert(i.pid);
    }
    auto heap_of = [&](const auto& k) { return heaps.count({k.tgid, k.epoch}) > 0; };
    // Growth is keyed by address space (epoch = mm_id, bpf/growth.h): an
    // exec takes the old image's, not the new one's. An instance whose
    // address space is not known (no mappings recorded: --no-mappings, or
    // none made) takes all its pid's.
    auto growth_of = [&](const memtop_agg_key& k) {
        return unknown_space.count(k.tgid) > 0 || address_spaces.count({k.tgid, k.epoch}) > 0;
    };
    // Mapping records and aggregates are keyed by address space (epoch = mm_id).
    auto mappings_of = [&](const auto& k) { return address_spaces.count({k.tgid, k.epoch}) > 0; };

    std::unordered_set<uint64_t> referenced;
    purge_aggregates<memtop_agg_val>(maps.aggs, heap_of, referenced);
    purge_records<memtop_alloc_val>(maps.allocs, heap_of);
    purge_records<memtop_mi_tag>(maps.mi_blocks, heap_of);
    purge_records<uint64_t>(maps.mi_heaps, heap_of);
    purge_aggregates<memtop_growth_val>(maps.growth, growth_of, referenced);
    purge_records<memtop_alloc_val>(maps.mapped, mappings_of);
    purge_records<uint64_t>(maps.mapped_ends, mappings_of);
    purge_aggregates<memtop_agg_val>(maps.mapped_aggs, mappings_of, referenced);
    // Python's object-allocator domain: keyed like the heap's.
    purge_aggregates<memtop_agg_val>(maps.py_aggs, heap_of, referenced);
    purge_records<memtop_alloc_val>(maps.py_allocs, heap_of);

    // A stack no aggregate references is deleted. The kernel may be storing
    // one meanwhile whose aggregate did not exist yet when the aggregates
    // were read above: so they are read again after the deletes, and a
    // deleted stack that is referenced by then is put back. A charge after
    // that second read finds its stack missing and stores it again itself.
    // Python frames (full build): a process's own, gone with it.
    if (maps.py_stacks >= 0)
        for (const auto& [id, ps] : dump_map<uint64_t, memtop_py_stack>(maps.py_stacks))
            if (pids.count(ps.tgid) && !referenced.count(id)) bpf_map_delete_elem(maps.py_stacks, &id);

    std::vector<std::pair<uint64_t, memtop_stack>> deleted;
    std::vector<uint64_t> ids;
    for (auto& [id, stack] : dump_map<uint64_t, memtop_stack>(maps.stacks))
        if (!referenced.count(id)) {
            deleted.emplace_back(id, stack);
            ids.push_back(id);
        }
    if (deleted.empty()) return;
    uint32_t done = static_cast<uint32_t>(ids.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    if (bpf_map_delete_batch(maps.stacks, ids.data(), &done, &opts) != 0) {
        // Only the first `done` are gone for sure; the rest one at a time,
        // keeping those that were deleted.
        size_t kept = done;
        for (size_t i = done; i < ids.size(); i++)
            if (bpf_map_delete_elem(maps.stacks, &ids[i]) == 0) deleted[kept++] = deleted[i];
        deleted.resize(kept);
    }
    referenced = referenced_stacks(maps);
    for (const auto& [id, stack] : deleted)
        if (referenced.count(id)) bpf_map_update_elem(maps.stacks, &id, &stack, BPF_NOEXIST);
}

}  // namespace memtop
