#include "attach/fde_ranges.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace memtop {

namespace {

// DW_EH_PE pointer encodings, as GCC and clang emit them in .eh_frame
// FDEs. libdw decodes them internally but does not expose the FDE's range,
// so this is the one piece of the format read here.
bool read_encoded(const uint8_t*& p, const uint8_t* end, uint8_t enc, uint64_t section_vaddr,
                  const uint8_t* section_start, uint64_t& out) {
    const uint8_t* at = p;
    uint64_t v = 0;
    switch (enc & 0x0f) {
        case DW_EH_PE_absptr:
        case DW_EH_PE_udata8:
        case DW_EH_PE_sdata8:
            if (end - p < 8) return false;
            memcpy(&v, p, 8);
            p += 8;
            break;
        case DW_EH_PE_udata4: {
            if (end - p < 4) return false;
            uint32_t x;
            memcpy(&x, p, 4);
            v = x;
            p += 4;
            break;
        }
        case DW_EH_PE_sdata4: {
            if (end - p < 4) return false;
            int32_t x;
            memcpy(&x, p, 4);
            v = (uint64_t)(int64_t)x;
            p += 4;
            break;
        }
        case DW_EH_PE_udata2: {
            if (end - p < 2) return false;
            uint16_t x;
            memcpy(&x, p, 2);
            v = x;
            p += 2;
            break;
        }
        case DW_EH_PE_sdata2: {
            if (end - p < 2) return false;
            int16_t x;
            memcpy(&x, p, 2);
            v = (uint64_t)(int64_t)x;
            p += 2;
            break;
        }
        default:
            return false;  // uleb/sleb: not used for FDE ranges by any x86-64 toolchain
    }
    switch (enc & 0x70) {
        case 0:
            break;
        case DW_EH_PE_pcrel:
            v += section_vaddr + (uint64_t)(at - section_start);
            break;
        default:
            return false;
    }
    out = v;
    return true;
}

// The FDE pointer encoding from a CIE's augmentation ('zR...' -> the byte
// for 'R' in the augmentation data).
uint8_t fde_encoding(const Dwarf_CIE& cie) {
    const char* aug = cie.augmentation;
    if (!aug || aug[0] != 'z' || !cie.augmentation_data) return DW_EH_PE_absptr;
    const uint8_t* d = cie.augmentation_data;
    const uint8_t* end = d + cie.augmentation_data_size;
    for (const char* a = aug + 1; *a && d < end; a++) {
        switch (*a) {
            case 'R':
                return *d;
            case 'L':
                d++;
                break;
            case 'S':
                break;
            case 'P': {
                uint8_t penc = *d++;
                size_t n = (penc & 0x0f) == DW_EH_PE_udata2 || (penc & 0x0f) == DW_EH_PE_sdata2   ? 2
                           : (penc & 0x0f) == DW_EH_PE_udata4 || (penc & 0x0f) == DW_EH_PE_sdata4 ? 4
                                                                                                  : 8;
                d += n;
                break;
            }
            default:
                return DW_EH_PE_absptr;
        }
    }
    return DW_EH_PE_absptr;
}

}  // namespace

std::vector<CodeRange> fde_ranges(Elf* elf, Elf_Scn* scn, bool is_eh) {
    std::vector<CodeRange> ranges;
    GElf_Shdr sh;
    Elf_Data* data = scn ? elf_getdata(scn, nullptr) : nullptr;
    if (!data || !data->d_buf || !gelf_getshdr(scn, &sh)) return ranges;
    const unsigned char* ident = (const unsigned char*)elf_getident(elf, nullptr);
    const uint8_t* base = (const uint8_t*)data->d_buf;
    std::map<Dwarf_Off, uint8_t> cie_enc;
    for (Dwarf_Off off = 0, next = 0; off != (Dwarf_Off)-1; off = next) {
        Dwarf_CFI_Entry e;
        int rc = dwarf_next_cfi(ident, data, is_eh, off, &next, &e);
        if (rc == 1) break;
        if (rc != 0) {
            if (next == off || next == (Dwarf_Off)-1) break;
            continue;
        }
        if (dwarf_cfi_cie_p(&e)) {
            cie_enc[off] = is_eh ? fde_encoding(e.cie) : (uint8_t)DW_EH_PE_absptr;
            continue;
        }
        auto enc = cie_enc.find(e.fde.CIE_pointer);
        uint8_t encoding = enc != cie_enc.end() ? enc->second : (uint8_t)DW_EH_PE_absptr;
        const uint8_t* p = e.fde.start;
        uint64_t lo = 0, len = 0;
        if (!read_encoded(p, e.fde.end, encoding, sh.sh_addr, base, lo) ||
            !read_encoded(p, e.fde.end, encoding & 0x0f, 0, base, len) || len == 0)
            continue;
        ranges.push_back({lo, lo + len});
    }
    std::sort(ranges.begin(), ranges.end(), [](const CodeRange& a, const CodeRange& b) { return a.lo < b.lo; });
    return ranges;
}

}  // namespace memtop
