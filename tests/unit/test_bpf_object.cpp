// The BPF objects as built, opened but not loaded: no root, no kernel needed.
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "kernel/programs.h"

#include "memtop.skel.h"
#include "memtop_compat.skel.h"
#include "mimalloc.skel.h"

namespace {

bool has_tail_call(const bpf_program* p) {
    const bpf_insn* insns = bpf_program__insns(p);
    for (size_t i = 0; i < bpf_program__insn_cnt(p); i++) {
        const bpf_insn& in = insns[i];
        if (in.code == (BPF_JMP | BPF_CALL) && in.src_reg == 0 && in.imm == BPF_FUNC_tail_call) return true;
    }
    return false;
}

// Names of the uprobe programs (kprobe type) in obj that lack a tail call.
std::vector<std::string> uprobes_without_tail_call(bpf_object* obj, size_t& uprobes) {
    std::vector<std::string> missing;
    uprobes = 0;
    bpf_program* p;
    bpf_object__for_each_program(p, obj) {
        if (bpf_program__type(p) != BPF_PROG_TYPE_KPROBE) continue;
        uprobes++;
        if (!has_tail_call(p)) missing.push_back(bpf_program__name(p));
    }
    return missing;
}

}  // namespace

// See use_task_stack() in bpf/heap.h: without a tail call, kernels
// since 6.13 run these programs on a per-CPU stack that a preempted thread
// shares with the next thread hitting the same probe on that CPU.
TEST_CASE("every uprobe program contains the tail call that keeps it on the task's stack", "[bpf]") {
    size_t uprobes = 0;
    SECTION("full build") {
        memtop_bpf* skel = memtop_bpf__open();
        REQUIRE(skel);
        CHECK(uprobes_without_tail_call(skel->obj, uprobes) == std::vector<std::string>{});
        // 13 entry programs (2 of the sampler), alloc_entry and
        // op_new_entry (nine of them in two, by cookie), alloc_ret_site,
        // alloc_return, and the
        // Python domain's py_site, py_new_pool_return and the sampler's two
        // Python points, py_finalize: the test is not vacuous.
        CHECK(uprobes == 22);
        memtop_bpf__destroy(skel);
    }
    SECTION("mimalloc object") {
        mimalloc_bpf* skel = mimalloc_bpf__open();
        REQUIRE(skel);
        CHECK(uprobes_without_tail_call(skel->obj, uprobes) == std::vector<std::string>{});
        // memtop's 22, 16 entry programs of its own and mi_alloc_return
        CHECK(uprobes == 39);
        mimalloc_bpf__destroy(skel);
    }
    SECTION("compat build") {
        memtop_compat_bpf* skel = memtop_compat_bpf__open();
        REQUIRE(skel);
        CHECK(uprobes_without_tail_call(skel->obj, uprobes) == std::vector<std::string>{});
        CHECK(uprobes == 15);
        memtop_compat_bpf__destroy(skel);
    }
}

// kernel/programs.h is the one list of programs the loader knows: every
// program the builds contain is on it, the full build holds every one but
// those loaded on demand, the mimalloc object (memtop's plus those) every
// one, and the compat build exactly those that need nothing newer (the plain
// allocation entries one program each: it has no attach cookies).
TEST_CASE("the program table names exactly the programs of each build", "[bpf]") {
    auto names_of = [](bpf_object* obj) {
        std::set<std::string> names;
        bpf_program* p;
        bpf_object__for_each_program(p, obj) names.insert(bpf_program__name(p));
        return names;
    };
    std::set<std::string> all, at_start, always;
    for (const auto& spec : memtop::kPrograms) {
        all.insert(spec.name);
        if (!memtop::on_demand(spec.needs)) at_start.insert(spec.name);
        if (spec.needs == memtop::ProgramNeeds::Always || spec.needs == memtop::ProgramNeeds::NoEntryCookies ||
            spec.needs == memtop::ProgramNeeds::NoSessions)
            always.insert(spec.name);
    }
    memtop_bpf* full = memtop_bpf__open();
    REQUIRE(full);
    CHECK(names_of(full->obj) == at_start);
    memtop_bpf__destroy(full);
    mimalloc_bpf* mi = mimalloc_bpf__open();
    REQUIRE(mi);
    CHECK(names_of(mi->obj) == all);
    mimalloc_bpf__destroy(mi);
    memtop_compat_bpf* compat = memtop_compat_bpf__open();
    REQUIRE(compat);
    CHECK(names_of(compat->obj) == always);
    memtop_compat_bpf__destroy(compat);
    CHECK(all.size() == memtop::kProgramCount);  // no name twice
}

// Where the kernel has uprobe sessions the shared return program is not
// loaded (ProgramNeeds::NoSessions): every allocator function whose return
// memtop needs must then have an entry program that takes it as a session.
TEST_CASE("every allocator function with a return has a session entry program", "[placement]") {
    for (const auto& sym : memtop::allocator_symbols()) {
        if (!sym.has_return) continue;
        INFO(sym.name);
        bool session = false;
        for (const auto& spec : memtop::kPrograms)
            if (spec.role == memtop::ProgramRole::AllocatorEntry && spec.entry == sym.program)
                session = memtop::session_entry(spec);
        CHECK(session);
    }
}
