// The code ranges the call frame information of an ELF file describes: one
// [lo, hi) per FDE, that is per function or function part (a .cold split
// has its own), local functions without a symbol included. Read by the
// unwind tables (kernel/unwind/cfi_table) and by probe placement, which
// needs the bounds of the code an operator new may return from.
#pragma once

#include <libelf.h>

#include <cstdint>
#include <vector>

namespace memtop {

struct CodeRange {
    uint64_t lo, hi;
};

// Every FDE's range in the CFI section `scn` of `elf` (.eh_frame when
// is_eh, else .debug_frame), sorted by lo. FDEs that do not decode are left
// out; never throws.
std::vector<CodeRange> fde_ranges(Elf* elf, Elf_Scn* scn, bool is_eh);

}  // namespace memtop
