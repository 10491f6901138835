#include "python/layout.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <regex>

namespace memtop {

namespace {

// CPython 3.11 on x86-64, from its headers (Include/internal/pycore_runtime.h,
// pycore_frame.h, cpython/pystate.h, cpython/code.h, cpython/unicodeobject.h
// of the 3.11 branch): offsetof() of each field, printed by a program built
// against Debian 12's python3.11-dev and checked against the layout Python's
// own structs give. The walk's fields: _PyRuntimeState.gilstate.tstate_current
// (576), PyThreadState.cframe (56) and .thread_id (152),
// _PyCFrame.current_frame (8), _PyInterpreterFrame.f_code (32), .previous
// (48), .prev_instr (56), .is_entry (68), .owner (69).
// 3.12 moved the current frame to PyThreadState.cframe->current_frame still,
// but the thread state to a thread-local and added C-stack shim frames; 3.13
// publishes _Py_DebugOffsets in _PyRuntime. Either needs its own row here,
// checked against that version's headers the same way.
const PythonLayout kLayouts[] = {
    [] {
        PythonLayout l;
        l.major = 3;
        l.minor = 11;
        l.runtime_tstate_current = 576;
        l.tstate_cframe = 56;
        l.tstate_thread_id = 152;
        l.cframe_current_frame = 8;
        l.frame_code = 32;
        l.frame_previous = 48;
        l.frame_prev_instr = 56;
        l.frame_is_entry = 68;
        l.frame_owner = 69;
        l.owner_skip = 0xff;  // 3.11 has no shim frames
        l.code_firstlineno = 72;
        l.code_filename = 112;
        l.code_name = 120;
        l.code_qualname = 128;
        l.code_linetable = 136;
        l.code_adaptive = 184;
        return l;
    }(),
};

// The address of `symbol` (an object in .dynsym or .symtab) in the process,
// through the file's mapping of the segment that holds it.
std::optional<uint64_t> symbol_address(const std::string& path, const std::vector<Mapping>& maps, const Mapping& file,
                                       const char* symbol) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    elf_version(EV_CURRENT);
    Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    std::optional<uint64_t> vaddr;
    std::optional<uint64_t> file_off;
    if (elf) {
        for (Elf_Scn* scn = nullptr; !vaddr && (scn = elf_nextscn(elf, scn));) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB)) continue;
            Elf_Data* data = elf_getdata(scn, nullptr);
            if (!data || !sh.sh_entsize) continue;
            for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(data, static_cast<int>(i), &sym) || sym.st_shndx == SHN_UNDEF) continue;
                const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
                if (name && std::strcmp(name, symbol) == 0) {
                    vaddr = sym.st_value;
                    break;
                }
            }
        }
        size_t nph = 0;
        if (vaddr && elf_getphdrnum(elf, &nph) == 0)
            for (size_t i = 0; i < nph; i++) {
                GElf_Phdr ph;
                if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
                if (*vaddr >= ph.p_vaddr && *vaddr < ph.p_vaddr + ph.p_filesz) {
                    file_off = *vaddr - ph.p_vaddr + ph.p_offset;
                    break;
                }
            }
        elf_end(elf);
    }
    close(fd);
    if (!file_off) return std::nullopt;
    for (const auto& m : maps)
        if (m.dev == file.dev && m.ino == file.ino && *file_off >= m.pgoff && *file_off < m.pgoff + (m.end - m.start))
            return m.start + (*file_off - m.pgoff);
    return std::nullopt;
}

}  // namespace

const PythonLayout* python_layout(int major, int minor) {
    for (const auto& l : kLayouts)
        if (l.major == major && l.minor == minor) return &l;
    return nullptr;
}

std::optional<std::pair<int, int>> python_version_of(const std::string& file_name) {
    static const std::regex re(R"(^(?:lib)?python(\d+)\.(\d+)[a-z]*(?:\.so.*|-.*)?$)");
    std::string base = file_name.substr(file_name.rfind('/') + 1);
    std::smatch m;
    if (!std::regex_match(base, m, re)) return std::nullopt;
    return std::make_pair(std::stoi(m[1]), std::stoi(m[2]));
}

std::optional<PythonTarget> find_python(const std::vector<Mapping>& maps, const std::string& root) {
    std::vector<std::pair<uint64_t, uint64_t>> seen;
    for (const auto& m : maps) {
        if (!m.ino || m.path.empty() || m.path.find("python") == std::string::npos) continue;
        if (std::find(seen.begin(), seen.end(), std::make_pair(m.dev, m.ino)) != seen.end()) continue;
        seen.emplace_back(m.dev, m.ino);
        auto runtime = symbol_address(root + m.path, maps, m, "_PyRuntime");
        if (!runtime) continue;
        PythonTarget t;
        t.module = m.path;
        t.runtime = *runtime;
        if (auto v = python_version_of(m.path)) {
            t.major = v->first;
            t.minor = v->second;
            t.layout = python_layout(t.major, t.minor);
        }
        return t;
    }
    return std::nullopt;
}

}  // namespace memtop
