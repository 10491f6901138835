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

#include <cerrno>
#include <cstring>
#include <string>
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
    mimalloc_bpf* skel = mimalloc_bpf__open();
    if (!skel) return fail("open the BPF programs for them", -errno);
    auto destroy = [skel] { mimalloc_bpf__destroy(skel); };
    // Every map is memtop's: the same name, sizes and layout (read-only
    // globals included, so the verifier sees the values memtop's loader set).
    // A map memtop's object did not create is not created here either.
    bpf_map* m;
    bpf_object__for_each_map(m, skel->obj) {
        bpf_map* own = same_map(obj_, m);
        if (!own) continue;  // its own (a scratch buffer)
        if (bpf_map__key_size(own) != bpf_map__key_size(m) || bpf_map__value_size(own) != bpf_map__value_size(m)) {
            destroy();
            return fail(std::string("load the BPF programs for them (map ") + bpf_map__name(m) +
                            " differs from memtop's: the two objects were built from different sources)",
                        -EINVAL);
        }
        if (bpf_map__fd(own) < 0) {
            bpf_map__set_autocreate(m, false);
            continue;
        }
        if (int err = bpf_map__reuse_fd(m, bpf_map__fd(own))) {
            destroy();
            return fail("load the BPF programs for them (share memtop's maps)", err);
        }
    }
    // Only mimalloc.h's programs load; memtop's own are loaded already.
    bpf_program* p;
    bpf_object__for_each_program(p, skel->obj) {
        bool on = false, session = false;
        for (size_t i = 0; i < kProgramCount; i++)
            if (std::strcmp(kPrograms[i].name, bpf_program__name(p)) == 0) {
                on = load[i];
                session = use_session_ && session_entry(kPrograms[i]);
            }
        bpf_program__set_autoload(p, on);
        if (on && use_multi_ && bpf_program__type(p) == BPF_PROG_TYPE_KPROBE)
            bpf_program__set_expected_attach_type(
                p, static_cast<bpf_attach_type>(session ? kAttachTraceUprobeSession : kAttachTraceUprobeMulti));
    }
    if (int err = mimalloc_bpf__load(skel)) {
        destroy();
        return fail("load the BPF programs for them", err);
    }
    for (size_t i = 0; i < kProgramCount; i++)
        if (load[i]) programs_[i] = bpf_object__find_program_by_name(skel->obj, kPrograms[i].name);
    mimalloc_.push_back(std::make_unique<SkeletonOwner>());
    mimalloc_.back()->destroy = destroy;
    return mimalloc_error_;
}

}  // namespace memtop
