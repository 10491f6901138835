// The mimalloc object (bpf/mimalloc.bpf.c): the programs of entry points
// only some allocators define (mimalloc's heap API, mi_strdup, mi_expand,
// jemalloc's xallocx, ...). Verifying them took as long as the rest of the
// allocator programs, so memtop's start-up does not load them: the first
// attach to a file that defines one of their symbols does, at whatever time
// that is (a process that starts later too), on the maps memtop's object
// already made; a later file that needs programs not loaded yet loads them
// from another instance of the object. If a load fails, those functions are
// not traced and said so (and no load is tried again); everything else goes
// on.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernel/libbpf_log.h"
#include "kernel/tracer.h"
#include "kernel/uprobe_multi.h"
#include "mimalloc.skel.h"
#include "util/errors.h"

namespace memtop {

namespace {

// The part of a libbpf internal map's name after the object's prefix
// ("memtop_b.rodata" -> ".rodata"); the whole name for the others.
std::string map_key(const bpf_map* m) {
    std::string name = bpf_map__name(m);
    if (!bpf_map__is_internal(m)) return name;
    auto dot = name.find('.');
    return dot == std::string::npos ? name : name.substr(dot);
}

bpf_map* same_map(bpf_object* obj, const bpf_map* m) {
    std::string key = map_key(m);
    bpf_map* own;
    bpf_object__for_each_map(own, obj) if (map_key(own) == key) return own;
    return nullptr;
}

}  // namespace

const std::string& Tracer::load_mimalloc(const std::vector<bool>& wanted) {
    if (!mimalloc_error_.empty()) return mimalloc_error_;  // failed once: not tried again
    if (compat_) {
        mimalloc_error_ = "the compat BPF build (Linux 5.12 and older) has no programs for them";
        return mimalloc_error_;
    }
    // mi_heap_destroy walks the heap's blocks (bpf/mimalloc.h).
    if (!mimalloc_probed_) {
        mi_heaps_ = libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_for_each_map_elem, nullptr) == 1;
        mimalloc_probed_ = true;
    }
    // Only the programs this file needs and no earlier load brought: a
    // jemalloc with xallocx verifies one program (and the return), not 17.
    std::vector<bool> load(kProgramCount, false);
    bool any = false;
    for (size_t i = 0; i < kProgramCount; i++) {
        load[i] = wanted[i] && on_demand(kPrograms[i].needs) && needed(kPrograms[i].needs) && !programs_[i];
        any |= load[i];
    }
    if (!any) return mimalloc_error_;
    for (size_t i = 0; i < kProgramCount; i++)
        if (kPrograms[i].role == ProgramRole::MimallocReturn && !use_session_ && !programs_[i]) load[i] = true;
    auto fail = [&](const std::string& what, int err) -> const std::string& {
        mimalloc_error_ = describe(what, err) + libbpf_hint();
        return mimalloc_error_;
    };
    // The verifier takes the time here, one program after another within an
    // object (0.4 s for mimalloc's 17 on a 2-core VM): as for memtop's own
    // object (load_variant), the programs are split by instruction count
    // between instances of the object, one per idle core, loaded on
    // threads at once; all of them on memtop's maps.
    std::vector<mimalloc_bpf*> skels;
    auto destroy_all = [&skels] {
        for (mimalloc_bpf* s : skels) mimalloc_bpf__destroy(s);
        skels.clear();
    };
    std::vector<int> part(kProgramCount, -1);
    {
        mimalloc_bpf* first = mimalloc_bpf__open();
        if (!first) return fail("open the BPF programs for them", -errno);
        skels.push_back(first);
        std::vector<std::pair<size_t, size_t>> cost;  // (instructions, kPrograms index)
        for (size_t i = 0; i < kProgramCount; i++)
            if (load[i])
                if (bpf_program* p = bpf_object__find_program_by_name(first->obj, kPrograms[i].name))
                    cost.emplace_back(bpf_program__insn_cnt(p), i);
        size_t parts = std::clamp<size_t>(load_parts(), 1, std::max<size_t>(cost.size(), 1));
        std::sort(cost.rbegin(), cost.rend());
        std::vector<size_t> load_of(parts, 0);
        for (const auto& [insns, i] : cost) {
            size_t k = std::min_element(load_of.begin(), load_of.end()) - load_of.begin();
            part[i] = static_cast<int>(k);
            load_of[k] += insns;
        }
        for (size_t k = 1; k < parts; k++) {
            mimalloc_bpf* o = mimalloc_bpf__open();
            if (!o) {
                int err = -errno;
                destroy_all();
                return fail("open the BPF programs for them", err);
            }
            skels.push_back(o);
        }
    }
    for (size_t k = 0; k < skels.size(); k++) {
        bpf_object* obj = skels[k]->obj;
        // Every map is memtop's: the same name, sizes and layout (read-only
        // globals included, so the verifier sees the values memtop's loader
        // set). A map memtop's object did not create is not created here
        // either.
        bpf_map* m;
        bpf_object__for_each_map(m, obj) {
            bpf_map* own = same_map(obj_, m);
            if (!own) continue;  // its own (a scratch buffer)
            if (bpf_map__key_size(own) != bpf_map__key_size(m) || bpf_map__value_size(own) != bpf_map__value_size(m)) {
                destroy_all();
                return fail(std::string("load the BPF programs for them (map ") + bpf_map__name(m) +
                                " differs from memtop's: the two objects were built from different sources)",
                            -EINVAL);
            }
            if (bpf_map__fd(own) < 0) {
                bpf_map__set_autocreate(m, false);
                continue;
            }
            if (int err = bpf_map__reuse_fd(m, bpf_map__fd(own))) {
                destroy_all();
                return fail("load the BPF programs for them (share memtop's maps)", err);
            }
        }
        // Only this instance's share of mimalloc.h's programs loads;
        // memtop's own are loaded already.
        bpf_program* p;
        bpf_object__for_each_program(p, obj) {
            bool on = false, session = false;
            for (size_t i = 0; i < kProgramCount; i++)
                if (std::strcmp(kPrograms[i].name, bpf_program__name(p)) == 0) {
                    on = part[i] == static_cast<int>(k);
                    session = use_session_ && session_entry(kPrograms[i]);
                }
            bpf_program__set_autoload(p, on);
            if (on && use_multi_ && bpf_program__type(p) == BPF_PROG_TYPE_KPROBE)
                bpf_program__set_expected_attach_type(
                    p, static_cast<bpf_attach_type>(session ? kAttachTraceUprobeSession : kAttachTraceUprobeMulti));
        }
    }
    std::vector<int> errs(skels.size(), 0);
    const auto t0 = std::chrono::steady_clock::now();
    {
        std::vector<std::thread> threads;
        for (size_t k = 1; k < skels.size(); k++)
            threads.emplace_back([&errs, &skels, k] { errs[k] = mimalloc_bpf__load(skels[k]); });
        errs[0] = mimalloc_bpf__load(skels[0]);
        for (auto& t : threads) t.join();
    }
    for (int err : errs)
        if (err) {
            destroy_all();
            return fail("load the BPF programs for them", err);
        }
    for (size_t i = 0; i < kProgramCount; i++)
        if (load[i] && part[i] >= 0)
            programs_[i] =
                bpf_object__find_program_by_name(skels[static_cast<size_t>(part[i])]->obj, kPrograms[i].name);
    if (libbpf_verbose()) {
        size_t n = 0;
        for (int k : part) n += k >= 0;
        fprintf(stderr,
                "memtop: %zu more allocator programs (bpf/mimalloc.bpf.c) loaded in %.0f ms, %zu objects at once\n", n,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(), skels.size());
    }
    for (mimalloc_bpf* s : skels) {
        mimalloc_.push_back(std::make_unique<SkeletonOwner>());
        mimalloc_.back()->destroy = [s] { mimalloc_bpf__destroy(s); };
    }
    return mimalloc_error_;
}

}  // namespace memtop
