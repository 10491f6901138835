#include "attach/file_plan.h"

#include <climits>
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

const std::string kGarbled = "the reply is garbled";

void encode_segments(wire::Writer& w, const std::vector<LoadSegment>& segments) {
    w.num(static_cast<uint32_t>(segments.size()));
    for (const auto& s : segments) w.num(s.vaddr).num(s.memsz).num(s.offset).num(s.filesz).num<uint8_t>(s.exec);
}

std::string decode_segments(wire::Reader& r, uint64_t file_size, std::vector<LoadSegment>& out) {
    uint32_t n = 0;
    if (!r.num(n)) return kGarbled;
    if (n > kMaxSegments) return std::to_string(n) + " segments";
    for (uint32_t i = 0; i < n; i++) {
        LoadSegment s;
        uint8_t exec = 0;
        if (!r.num(s.vaddr) || !r.num(s.memsz) || !r.num(s.offset) || !r.num(s.filesz) || !r.num(exec) || exec > 1)
            return kGarbled;
        s.exec = exec;
        // Only the file's bytes count: memtop checks offsets against them.
        if (s.offset > file_size || s.filesz > file_size - s.offset)
            return "segment " + std::to_string(i) + " is outside the file";
        out.push_back(s);
    }
    return "";
}

std::optional<uint64_t> offset_in(const std::vector<LoadSegment>& segments, uint64_t vaddr) {
    for (const auto& s : segments)
        if (vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) return vaddr - s.vaddr + s.offset;
    return std::nullopt;
}

// A loader memtop may run: what the kernel would exec for the program, as
// a path with nothing a terminal or a shell could read otherwise.
bool runnable_interpreter(const std::string& path) {
    return !path.empty() && path[0] == '/' && printable(path, PATH_MAX - 1);
}

size_t allocator_count() {
    return allocator_symbols().size();
}

}  // namespace

std::optional<uint64_t> FilePlan::file_offset(uint64_t vaddr) const {
    return offset_in(segments, vaddr);
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
    encode_segments(w, p.segments);
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
    const std::string& garbled = kGarbled;
    if (std::string wrong = decode_segments(r, file_size, p.segments); !wrong.empty()) return wrong;
    uint32_t n = 0;
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

const std::vector<std::string>& symbol_questions() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& a : allocator_symbols()) v.push_back(a.name);
        v.push_back("PyMem_SetAllocator");
        v.push_back("_PyRuntime");
        v.push_back("Py_FinalizeEx");
        return v;
    }();
    return names;
}

bool FileSymbols::defines_allocator() const {
    for (const auto& d : defined)
        if (d.function && d.index < allocator_count()) return true;
    return false;
}

namespace {
const FileSymbols::Defined* find_defined(const std::vector<FileSymbols::Defined>& defined, std::string_view name) {
    const auto& names = symbol_questions();
    for (const auto& d : defined)
        if (d.index < names.size() && names[d.index] == name) return &d;
    return nullptr;
}
}  // namespace

std::optional<uint64_t> FileSymbols::function(std::string_view name) const {
    const Defined* d = find_defined(defined, name);
    if (!d || !d->function) return std::nullopt;
    return d->vaddr;
}

std::optional<uint64_t> FileSymbols::symbol(std::string_view name) const {
    const Defined* d = find_defined(defined, name);
    if (!d) return std::nullopt;
    return d->vaddr;
}

std::optional<uint64_t> FileSymbols::file_offset(uint64_t vaddr) const {
    return offset_in(segments, vaddr);
}

FileSymbols read_file_symbols(const ElfImage& image) {
    FileSymbols s;
    s.dynamic = image.dynamic();
    if (runnable_interpreter(image.interpreter())) s.interpreter = image.interpreter();
    s.has_functions = image.defines_functions();
    // Only segments whose bytes are in the file, as many as memtop takes: a
    // truncated or hostile file's others hold nothing to read, and an
    // honest worker's answer must pass decode_file_symbols.
    for (const auto& seg : image.segments())
        if (seg.offset <= image.file_size() && seg.filesz <= image.file_size() - seg.offset &&
            s.segments.size() < kMaxSegments)
            s.segments.push_back(seg);
    const auto& names = symbol_questions();
    for (size_t i = 0; i < names.size(); i++) {
        if (auto f = image.function(names[i]))
            s.defined.push_back({static_cast<uint16_t>(i), true, f->vaddr});
        else if (auto a = image.symbol(names[i]))
            s.defined.push_back({static_cast<uint16_t>(i), false, *a});
    }
    return s;
}

FileSymbols read_file_symbols(const std::string& path) {
    return read_file_symbols(*ElfImage::open(path, symbol_questions()));
}

void encode_file_symbols(wire::Writer& w, const FileSymbols& s) {
    w.num<uint8_t>(s.dynamic).str(s.interpreter).num<uint8_t>(s.has_functions);
    encode_segments(w, s.segments);
    w.num(static_cast<uint32_t>(s.defined.size()));
    for (const auto& d : s.defined) w.num(d.index).num<uint8_t>(d.function).num(d.vaddr);
}

std::string decode_file_symbols(wire::Reader& r, uint64_t file_size, FileSymbols& s) {
    s = FileSymbols{};
    uint8_t dynamic = 0, has_functions = 0;
    if (!r.num(dynamic) || dynamic > 1 || !r.str(s.interpreter) || !r.num(has_functions) || has_functions > 1)
        return kGarbled;
    s.dynamic = dynamic;
    s.has_functions = has_functions;
    // Run by memtop (ld.so --list): only what read_file_symbols leaves.
    if (!s.interpreter.empty() && (!s.dynamic || !runnable_interpreter(s.interpreter)))
        return "an interpreter memtop would not run";
    if (std::string wrong = decode_segments(r, file_size, s.segments); !wrong.empty()) return wrong;
    uint32_t n = 0;
    const size_t asked = symbol_questions().size();
    if (!r.num(n)) return kGarbled;
    if (n > asked) return std::to_string(n) + " symbols for " + std::to_string(asked) + " names";
    for (uint32_t i = 0; i < n; i++) {
        FileSymbols::Defined d;
        uint8_t function = 0;
        if (!r.num(d.index) || !r.num(function) || !r.num(d.vaddr) || function > 1) return kGarbled;
        if (d.index >= asked || (i > 0 && d.index <= s.defined.back().index))
            return "symbol " + std::to_string(i) + ": not one of the names asked";
        d.function = function;
        s.defined.push_back(d);
    }
    return r.done() ? "" : kGarbled;
}

}  // namespace memtop
