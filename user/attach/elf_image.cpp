#include "attach/elf_image.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string_view>

#include <capstone/capstone.h>

#include "attach/fde_ranges.h"
#include "util/errors.h"

namespace memtop {
namespace {

std::string strip_version(const char* name) {
    std::string s(name);
    auto at = s.find('@');
    return at == std::string::npos ? s : s.substr(0, at);
}

struct ElfHandle {
    Elf* elf = nullptr;
    ~ElfHandle() {
        if (elf) elf_end(elf);
    }
};

}  // namespace

ElfImage::~ElfImage() {
    if (data_) munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) close(fd_);
}

std::unique_ptr<ElfImage> ElfImage::open(const std::string& path, const std::vector<std::string>& wanted_list) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw MemtopError(kExitAttach, describe("open " + path, errno));
    return open_fd(fd, path, wanted_list);
}

std::unique_ptr<ElfImage> ElfImage::open_fd(int fd, const std::string& path,
                                            const std::vector<std::string>& wanted_list) {
    std::unique_ptr<ElfImage> img(new ElfImage());
    img->path_ = path;
    img->fd_ = fd;
    struct stat st;
    if (fstat(img->fd_, &st) != 0) throw MemtopError(kExitAttach, describe("stat " + path, errno));
    img->size_ = st.st_size;
    void* m = img->size_ ? mmap(nullptr, img->size_, PROT_READ, MAP_PRIVATE, img->fd_, 0) : MAP_FAILED;
    if (m == MAP_FAILED) throw MemtopError(kExitAttach, describe("map " + path, img->size_ ? errno : EINVAL));
    img->data_ = static_cast<const uint8_t*>(m);
    const std::set<std::string, std::less<>> wanted(wanted_list.begin(), wanted_list.end());

    elf_version(EV_CURRENT);
    ElfHandle h;
    h.elf = elf_memory(reinterpret_cast<char*>(const_cast<uint8_t*>(img->data_)), img->size_);
    if (!h.elf || elf_kind(h.elf) != ELF_K_ELF) throw MemtopError(kExitAttach, "read " + path + ": not an ELF file");

    GElf_Ehdr eh;
    img->position_dependent_ = gelf_getehdr(h.elf, &eh) && eh.e_type == ET_EXEC;
    size_t nphdr = 0;
    elf_getphdrnum(h.elf, &nphdr);
    for (size_t i = 0; i < nphdr; i++) {
        GElf_Phdr ph;
        if (gelf_getphdr(h.elf, i, &ph) && ph.p_type == PT_INTERP) {
            img->dynamic_ = true;
            if (ph.p_offset < img->size_ && ph.p_filesz <= img->size_ - ph.p_offset)
                img->interpreter_ =
                    std::string(reinterpret_cast<const char*>(img->data_ + ph.p_offset),
                                strnlen(reinterpret_cast<const char*>(img->data_ + ph.p_offset), ph.p_filesz));
        }
        if (gelf_getphdr(h.elf, i, &ph) && ph.p_type == PT_LOAD)
            img->segments_.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, (ph.p_flags & PF_X) != 0});
    }

    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(h.elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) continue;
        Elf_Data* d = elf_getdata(scn, nullptr);
        if (!d) continue;
        if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) {
            size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
            for (size_t i = 0; i < n; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(d, i, &sym) || sym.st_shndx == SHN_UNDEF) continue;
                int type = GELF_ST_TYPE(sym.st_info);
                const bool func = (type == STT_FUNC || type == STT_GNU_IFUNC) && sym.st_value != 0;
                // Other symbols only when asked for by name (_PyRuntime).
                if (!func && wanted.empty()) continue;
                const char* name = elf_strptr(h.elf, sh.sh_link, sym.st_name);
                if (!name || !*name) continue;
                if (func) img->defines_functions_ = true;
                // Compared before a string is made: most symbols are not asked for.
                const std::string_view bare(name, std::strcspn(name, "@"));
                if (!wanted.empty() && wanted.find(bare) == wanted.end()) continue;
                if (!func) {
                    img->objects_.emplace(std::string(bare), sym.st_value);
                    continue;
                }
                ElfFunction f{std::string(bare), sym.st_value, sym.st_size};
                // Prefer the global name; .symtab may add local aliases.
                if (GELF_ST_BIND(sym.st_info) != STB_LOCAL || !img->functions_.count(f.name))
                    img->functions_[f.name] = f;
                auto it = img->by_addr_.find(f.vaddr);
                if (it == img->by_addr_.end() || it->second.size < f.size) img->by_addr_[f.vaddr] = f;
            }
        } else if (sh.sh_type == SHT_RELA) {
            // PLT slots: R_X86_64_JUMP_SLOT (and GLOB_DAT for -fno-plt calls).
            GElf_Shdr symsh;
            Elf_Scn* symscn = elf_getscn(h.elf, sh.sh_link);
            if (!symscn || !gelf_getshdr(symscn, &symsh)) continue;
            Elf_Data* symd = elf_getdata(symscn, nullptr);
            size_t n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
            for (size_t i = 0; i < n; i++) {
                GElf_Rela r;
                if (!gelf_getrela(d, i, &r)) continue;
                unsigned type = GELF_R_TYPE(r.r_info);
                if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
                GElf_Sym sym;
                if (!symd || !gelf_getsym(symd, GELF_R_SYM(r.r_info), &sym)) continue;
                const char* name = elf_strptr(h.elf, symsh.sh_link, sym.st_name);
                if (!name || !*name) continue;
                std::string n = strip_version(name);
                if (wanted.empty() || wanted.count(n)) img->got_slots_[r.r_offset] = std::move(n);
            }
        }
    }
    return img;
}

std::optional<ElfFunction> ElfImage::function(const std::string& name) const {
    auto it = functions_.find(name);
    if (it == functions_.end()) return std::nullopt;
    return it->second;
}

std::optional<uint64_t> ElfImage::symbol(const std::string& name) const {
    if (auto f = function(name)) return f->vaddr;
    auto it = objects_.find(name);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
}

std::optional<ElfFunction> ElfImage::function_at(uint64_t vaddr) const {
    auto it = by_addr_.upper_bound(vaddr);
    if (it == by_addr_.begin()) return std::nullopt;
    --it;
    if (vaddr < it->second.vaddr + std::max<uint64_t>(it->second.size, 1)) return it->second;
    return std::nullopt;
}

std::optional<uint64_t> ElfImage::file_offset(uint64_t vaddr) const {
    for (const auto& s : segments_)
        if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
    return std::nullopt;
}

std::vector<uint8_t> ElfImage::bytes(uint64_t vaddr, size_t len) const {
    for (const auto& s : segments_) {
        if (vaddr < s.vaddr || vaddr >= s.vaddr + s.filesz) continue;
        uint64_t off = vaddr - s.vaddr + s.offset;
        uint64_t avail = s.vaddr + s.filesz - vaddr;
        size_t n = std::min<uint64_t>(len, avail);
        if (off + n > size_) n = off < size_ ? size_ - off : 0;
        // From the file, not from data_: the kernel puts the int3 of every
        // uprobe registered for all processes on this file (another tracer's,
        // or memtop's own under --heap-all) into each mapping of it that may
        // execute, and a private read-only mapping may. The page cache holds
        // the code as shipped.
        std::vector<uint8_t> out(n);
        ssize_t got = n ? pread(fd_, out.data(), n, static_cast<off_t>(off)) : 0;
        out.resize(got > 0 ? static_cast<size_t>(got) : 0);
        return out;
    }
    return {};
}

std::optional<std::string> ElfImage::plt_target(uint64_t vaddr) const {
    // A PLT stub is [endbr64] [bnd] jmp *slot(%rip) within its first 16 bytes.
    auto code = bytes(vaddr, 16);
    if (code.empty()) return std::nullopt;
    csh cs;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) return std::nullopt;
    cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
    cs_insn* insn = nullptr;
    size_t n = cs_disasm(cs, code.data(), code.size(), vaddr, 3, &insn);
    std::optional<std::string> result;
    for (size_t i = 0; i < n && !result; i++) {
        if (insn[i].id != X86_INS_JMP) continue;
        const cs_x86& x = insn[i].detail->x86;
        if (x.op_count == 1 && x.operands[0].type == X86_OP_MEM && x.operands[0].mem.base == X86_REG_RIP) {
            uint64_t slot = insn[i].address + insn[i].size + x.operands[0].mem.disp;
            auto it = got_slots_.find(slot);
            if (it != got_slots_.end()) result = it->second;
        }
        break;
    }
    if (n) cs_free(insn, n);
    cs_close(&cs);
    return result;
}

std::optional<std::pair<uint64_t, uint64_t>> ElfImage::code_range(uint64_t vaddr) const {
    if (!fdes_) {
        fdes_.emplace();
        ElfHandle h;
        h.elf = elf_memory(reinterpret_cast<char*>(const_cast<uint8_t*>(data_)), size_);
        size_t shstrndx = 0;
        if (h.elf && elf_getshdrstrndx(h.elf, &shstrndx) == 0)
            for (Elf_Scn* scn = nullptr; (scn = elf_nextscn(h.elf, scn));) {
                GElf_Shdr sh;
                const char* name = gelf_getshdr(scn, &sh) ? elf_strptr(h.elf, shstrndx, sh.sh_name) : nullptr;
                if (!name || strcmp(name, ".eh_frame") != 0 || sh.sh_type == SHT_NOBITS) continue;
                for (const auto& r : fde_ranges(h.elf, scn, true)) fdes_->push_back({r.lo, r.hi});
                break;
            }
    }
    auto it = std::upper_bound(fdes_->begin(), fdes_->end(), vaddr,
                               [](uint64_t v, const std::pair<uint64_t, uint64_t>& r) { return v < r.first; });
    if (it == fdes_->begin()) return std::nullopt;
    --it;
    if (vaddr >= it->second) return std::nullopt;
    return *it;
}

const std::vector<std::pair<uint64_t, uint64_t>>& ElfImage::code_ranges() const {
    code_range(0);  // reads the FDEs once
    return *fdes_;
}

}  // namespace memtop
