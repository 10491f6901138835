#include "attach/file_plan.h"

#include <set>
#include <string_view>

namespace memtop {
namespace {

// Bounds on what a reply may hold: far above any real file (libc has 8 PT_LOAD
// segments at most, about 40 allocator sites; python3.11 about 700 pymalloc
// sites), so only a garbled or hostile reply meets them.
constexpr uint32_t kMaxSegments = 64;
constexpr uint32_t kMaxSites = 1024;
constexpr uint32_t kMaxReturnSites = 4096;
constexpr uint32_t kMaxPymallocSites = 1u << 16;
constexpr size_t kMaxText = 400;
constexpr uint8_t kLastProgram = static_cast<uint8_t>(ProbeProgram::MiHeapRealpathEntry);

bool printable(std::string_view s, size_t max) {
    if (s.size() > max) return false;
    for (unsigned char c : s)
        if (c < 0x20 || c >= 0x7f) return false;
    return true;
}

const std::set<std::string, std::less<>>& symbol_names() {
    static const std::set<std::string, std::less<>> names = [] {
        std::set<std::string, std::less<>> s;
        for (const auto& a : allocator_symbols()) s.insert(a.name);
        return s;
    }();
    return names;
}

}  // namespace

std::optional<uint64_t> FilePlan::file_offset(uint64_t vaddr) const {
    for (const auto& s : segments)
        if (vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) return vaddr - s.vaddr + s.offset;
    return std::nullopt;
}

bool FilePlan::in_code(uint64_t offset) const {
    for (const auto& s : segments)
        if (s.exec && offset >= s.offset && offset - s.offset < s.filesz) return true;
    return false;
}

FilePlan make_plan(const ElfImage& image, PlanKind kind) {
    FilePlan p;
    p.kind = kind;
    p.segments = image.segments();
    p.position_dependent = image.position_dependent();
    if (kind == PlanKind::Probes)
        p.sites = plan_probes(image);
    else
        p.pymalloc = plan_pymalloc(image);
    return p;
}

void encode_plan(wire::Writer& w, const FilePlan& p) {
    w.num(static_cast<uint32_t>(p.segments.size()));
    for (const auto& s : p.segments) w.num(s.vaddr).num(s.memsz).num(s.offset).num(s.filesz).num<uint8_t>(s.exec);
    w.num<uint8_t>(p.position_dependent);
    if (p.kind == PlanKind::Probes) {
        w.num(static_cast<uint32_t>(p.sites.size()));
        for (const auto& s : p.sites) {
            w.str(s.symbol).num(static_cast<uint8_t>(s.program)).num<uint8_t>(s.has_return);
            w.num(s.func_vaddr).num(s.insn_offset).num(s.file_offset).num<uint8_t>(s.emulated);
            w.str(s.instruction).str(s.forwards_to).str(s.not_traced);
            w.num(static_cast<uint32_t>(s.return_sites.size()));
            for (uint64_t r : s.return_sites) w.num(r);
        }
        return;
    }
    const PymallocPlan& m = p.pymalloc;
    for (uint64_t a : m.impl) w.num(a);
    w.num(m.usedpools).num(m.new_pool);
    w.num(static_cast<uint32_t>(m.sites.size()));
    for (const auto& s : m.sites) {
        w.num(static_cast<uint8_t>(s.op)).num(s.jump_vaddr).num(s.fallback).str(s.reg);
        w.num<uint8_t>(s.imm.has_value()).num(s.imm.value_or(0));
    }
}

std::string decode_plan(wire::Reader& r, PlanKind kind, uint64_t file_size, FilePlan& p) {
    p = FilePlan{};
    p.kind = kind;
    const std::string garbled = "the reply is garbled";
    uint32_t n = 0;
    if (!r.num(n)) return garbled;
    if (n > kMaxSegments) return std::to_string(n) + " segments";
    for (uint32_t i = 0; i < n; i++) {
        LoadSegment s;
        uint8_t exec = 0;
        if (!r.num(s.vaddr) || !r.num(s.memsz) || !r.num(s.offset) || !r.num(s.filesz) || !r.num(exec) || exec > 1)
            return garbled;
        s.exec = exec;
        // Only the file's bytes count: memtop checks offsets against them.
        if (s.offset > file_size || s.filesz > file_size - s.offset)
            return "segment " + std::to_string(i) + " is outside the file";
        p.segments.push_back(s);
    }
    uint8_t pd = 0;
    if (!r.num(pd) || pd > 1) return garbled;
    p.position_dependent = pd;

    if (kind == PlanKind::Probes) {
        if (!r.num(n)) return garbled;
        if (n > kMaxSites) return std::to_string(n) + " probe sites";
        for (uint32_t i = 0; i < n; i++) {
            ProbeSite s;
            uint8_t program = 0, has_return = 0, emulated = 0;
            uint32_t rets = 0;
            if (!r.str(s.symbol) || !r.num(program) || !r.num(has_return) || !r.num(s.func_vaddr) ||
                !r.num(s.insn_offset) || !r.num(s.file_offset) || !r.num(emulated) || !r.str(s.instruction) ||
                !r.str(s.forwards_to) || !r.str(s.not_traced) || !r.num(rets))
                return garbled;
            const std::string at = "site " + std::to_string(i) + ": ";
            if (!symbol_names().count(s.symbol)) return at + "not an allocator function memtop knows";
            if (program > kLastProgram || has_return > 1 || emulated > 1) return at + "garbled";
            if (!s.forwards_to.empty() && !symbol_names().count(s.forwards_to))
                return at + "forwards to a function memtop does not know";
            if (!printable(s.instruction, kMaxText) || !printable(s.not_traced, kMaxText))
                return at + "text that is not printable";
            if (rets > kMaxReturnSites) return at + std::to_string(rets) + " return sites";
            s.program = static_cast<ProbeProgram>(program);
            s.has_return = has_return;
            s.emulated = emulated;
            for (uint32_t k = 0; k < rets; k++) {
                uint64_t off = 0;
                if (!r.num(off)) return garbled;
                if (!p.in_code(off)) return at + "a return site outside the file's code";
                s.return_sites.push_back(off);
            }
            // What memtop probes: the entry offset is the one the function's
            // address gives, in the file's code.
            if (s.forwards_to.empty() && s.not_traced.empty()) {
                auto want = p.file_offset(s.func_vaddr + s.insn_offset);
                if (!want || *want != s.file_offset || !p.in_code(s.file_offset))
                    return at + "an offset outside the file's code";
            }
            p.sites.push_back(std::move(s));
        }
        return r.done() ? "" : garbled;
    }

    PymallocPlan& m = p.pymalloc;
    for (uint64_t& a : m.impl)
        if (!r.num(a)) return garbled;
    if (!r.num(m.usedpools) || !r.num(m.new_pool) || !r.num(n)) return garbled;
    if (n > kMaxPymallocSites) return std::to_string(n) + " pymalloc sites";
    for (uint32_t i = 0; i < n; i++) {
        PymallocSite s;
        uint8_t op = 0, has_imm = 0;
        uint64_t imm = 0;
        if (!r.num(op) || !r.num(s.jump_vaddr) || !r.num(s.fallback) || !r.str(s.reg) || !r.num(has_imm) ||
            !r.num(imm) || op > static_cast<uint8_t>(PymallocOp::Free) || has_imm > 1)
            return garbled;
        // A register's name, as capstone writes it ("rbx", "r12").
        if (s.reg.size() > 8) return "pymalloc site " + std::to_string(i) + ": garbled register";
        for (char c : s.reg)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
                return "pymalloc site " + std::to_string(i) + ": garbled register";
        s.op = static_cast<PymallocOp>(op);
        if (has_imm) s.imm = imm;
        m.sites.push_back(std::move(s));
    }
    // The addresses are checked where they become offsets (pymalloc_probes):
    // each must land in the file's code.
    return r.done() ? "" : garbled;
}

}  // namespace memtop
