#include "symbolize/symbolizer.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "procinfo/proc_status.h"
#include "symbolize/perf_map.h"
#include "symbolize/sandbox.h"
#include "symbolize/symbol_index.h"
#include "symbolize/wire.h"
#include "symbolize/worker_client.h"
#include "util/unique_fd.h"

namespace memtop {
namespace {

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};

using FileId = std::pair<uint64_t, uint64_t>;  // (dev, ino)

std::string demangle(const char* name) {
    if (name[0] == '_' && name[1] == 'Z') {
        int status = 0;
        std::unique_ptr<char, FreeDeleter> out(abi::__cxa_demangle(name, nullptr, nullptr, &status));
        if (status == 0 && out) return out.get();
    }
    return name;
}

// Whether `fd` is the file mapped by `m`. Strict identity is (dev, ino);
// two filesystems report an identity in stat() that differs from the one
// /proc/PID/maps shows: btrfs subvolumes (anonymous st_dev, same inode) and
// overlayfs (maps shows the underlying file). `allow_overlay` accepts any
// overlayfs file, for paths that already name the mapped file.
bool is_mapped_file(int fd, const Mapping& m, bool allow_overlay) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    if (st.st_dev == m.dev && st.st_ino == m.ino) return true;
    struct statfs sfs {};
    if (::fstatfs(fd, &sfs) != 0) return false;
    if (sfs.f_type == BTRFS_SUPER_MAGIC) return st.st_ino == m.ino;
    if (sfs.f_type == OVERLAYFS_SUPER_MAGIC) return allow_overlay;
    return false;
}

struct OpenedFile {
    UniqueFd fd;
    std::string file_name;  // where libdwfl looks for .gnu_debuglink files
};

// Opens `path` (absolute, in the root of process `pid`, or on the host
// for pid 0) without leaving that root and without following symlinks (a
// mapped file's path in maps has none; a container's planted link must not
// lead memtop to the host's files), never blocking on a FIFO.
UniqueFd open_in_root(int pid, const std::string& path) {
    if (path.empty() || path.front() != '/') return UniqueFd();
    UniqueFd root(
        ::open(pid > 0 ? ("/proc/" + std::to_string(pid) + "/root").c_str() : "/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return UniqueFd();
    struct open_how how {};
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
    UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, root.get(), path.c_str() + 1, &how, sizeof how)));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return UniqueFd();
    return fd;
}

// Opens the file behind `m`, in order: /proc/PID/map_files/START-END (works
// for deleted files and inside containers; needs CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE), /proc/PID/root/PATH, PATH, and /proc/PID/exe (a
// deleted main executable without privileges). Each candidate must be the
// mapped file, so a path that now names another file (an upgraded library, a
// reused pid) is refused.
std::optional<OpenedFile> open_mapped_file(int pid, const Mapping& m) {
    auto try_open = [&](const std::string& path, bool allow_overlay) -> UniqueFd {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
        if (fd && is_mapped_file(fd.get(), m, allow_overlay)) return fd;
        return UniqueFd();
    };
    const bool absolute = !m.path.empty() && m.path.front() == '/';
    const std::string proc = pid > 0 ? "/proc/" + std::to_string(pid) : std::string();
    const std::string root_path = pid > 0 && absolute ? proc + "/root" + m.path : m.path;

    if (pid > 0) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "/map_files/%" PRIx64 "-%" PRIx64, m.start, m.end);
        if (UniqueFd fd = try_open(proc + buf, true)) return OpenedFile{std::move(fd), m.deleted ? m.path : root_path};
    }
    if (absolute && !m.deleted) {
        if (pid > 0) {
            UniqueFd fd = open_in_root(pid, m.path);
            if (fd && is_mapped_file(fd.get(), m, true)) return OpenedFile{std::move(fd), root_path};
        }
        if (UniqueFd fd = try_open(m.path, true)) return OpenedFile{std::move(fd), m.path};
    }
    if (pid > 0) {
        if (UniqueFd fd = try_open(proc + "/exe", false)) return OpenedFile{std::move(fd), m.path};
    }
    return std::nullopt;
}

// In the worker: asks memtop for the module's separate debug file (the
// worker cannot open files). Defined with the worker's loop below.
int worker_find_debuginfo(Dwfl_Module* mod, void** userdata, const char* modname, Dwarf_Addr base,
                          const char* file_name, const char* debuglink_file, GElf_Word debuglink_crc,
                          char** debuginfo_file_name);

const Dwfl_Callbacks kOfflineCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = worker_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,  // default ":.debug:/usr/lib/debug"
};

struct Segment {
    uint64_t offset;  // p_offset
    uint64_t filesz;  // p_filesz
    uint64_t vaddr;   // p_vaddr
    bool exec;
};

// What describe() found for one address, kept so that the same address in
// another stack, another report or another process costs one hash lookup.
struct Described {
    std::optional<std::string> function;
    std::optional<uint64_t> offset;
    std::optional<std::string> file;
    std::optional<int> line;
    std::vector<InlinedFrame> inlined;
};

// Resolved addresses kept per module, at most this many: a long --heap-all
// run meets many addresses; past the cap the cache starts over.
constexpr size_t kMaxDescribedPerModule = size_t(1) << 18;

// ELF vaddr of file offset `off`, preferring a segment whose execute
// permission matches the mapping's (segments may share a file page).
std::optional<uint64_t> vaddr_of(const std::vector<Segment>& segments, uint64_t off, bool exec) {
    std::optional<uint64_t> other;
    for (const Segment& s : segments) {
        if (off < s.offset || off - s.offset >= s.filesz) continue;
        uint64_t v = off - s.offset + s.vaddr;
        if (s.exec == exec) return v;
        if (!other) other = v;
    }
    return other;
}

// In the worker: one ELF file, alone in its own Dwfl, reported at bias 0 (ET_DYN) or at its
// link-time addresses (ET_EXEC): addresses passed to libdwfl are ELF
// virtual addresses plus `bias`.
struct Module {
    Dwfl* dwfl = nullptr;
    Dwfl_Module* mod = nullptr;
    Dwarf_Addr bias = 0;
    std::vector<Segment> segments;
    SymbolIndex symbols;
    std::string build_id;  // hex, for exports that name files by build-id
    // What of the file could not be read (its symbols, its DWARF), for the
    // report; "" when nothing was amiss.
    std::string problem;

    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    ~Module() {
        if (dwfl) dwfl_end(dwfl);
    }
};

// What a traced process's file fails to be, for the report: the reason
// libdwfl gives, when it gives one.
std::string dwfl_problem(const char* what) {
    const int err = dwfl_errno();
    return err ? std::string(what) + " (" + dwfl_errmsg(err) + ")" : std::string(what);
}

// Whether every section of `elf` that has bytes in the file lies within
// the file (`file_size` bytes); else `problem` names the first that does not
// (a truncated file, a garbled section header).
bool sections_within(Elf* elf, uint64_t file_size, std::string& problem) {
    size_t shnum = 0, shstrndx = 0;
    if (elf_getshdrnum(elf, &shnum) != 0) {
        problem = std::string("section headers unreadable (") + elf_errmsg(-1) + ")";
        return false;
    }
    // libelf finds no section at all when the header table it is told of
    // lies past the file's end (a truncated file, a garbled e_shoff or
    // e_shnum such as 65,535): say so rather than "no symbols".
    GElf_Ehdr ehdr;
    if (gelf_getehdr(elf, &ehdr) && ehdr.e_shoff != 0 &&
        (shnum == 0 || ehdr.e_shoff > file_size ||
         uint64_t(ehdr.e_shnum) * ehdr.e_shentsize > file_size - ehdr.e_shoff)) {
        problem = "section headers (" + std::to_string(ehdr.e_shnum) + " at offset " + std::to_string(ehdr.e_shoff) +
                  ") past the end of the file (" + std::to_string(file_size) + " bytes)";
        return false;
    }
    if (elf_getshdrstrndx(elf, &shstrndx) != 0) shstrndx = 0;
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr mem;
        const GElf_Shdr* sh = gelf_getshdr(scn, &mem);
        if (!sh) {
            problem = std::string("section headers unreadable (") + elf_errmsg(-1) + ")";
            return false;
        }
        if (sh->sh_type == SHT_NOBITS || sh->sh_type == SHT_NULL) continue;
        if (sh->sh_offset > file_size || sh->sh_size > file_size - sh->sh_offset) {
            const char* name = shstrndx ? elf_strptr(elf, shstrndx, sh->sh_name) : nullptr;
            problem = std::string("section ") + (name ? name : "#" + std::to_string(elf_ndxscn(scn))) +
                      " runs past the end of the file";
            return false;
        }
    }
    return true;
}

bool has_section(Elf* elf, const char* wanted) {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0) return false;
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr mem;
        const GElf_Shdr* sh = gelf_getshdr(scn, &mem);
        const char* name = sh ? elf_strptr(elf, shstrndx, sh->sh_name) : nullptr;
        if (name && std::strcmp(name, wanted) == 0) return true;
    }
    return false;
}

// Whether the compile-unit headers of `dw` and each unit's first DIE can
// be read: garbage in .debug_info or .debug_abbrev shows there first.
// (Reading every DIE would cost too much at load; what fails later leaves
// frames without file:line.) Else `problem` says where.
bool dwarf_units_readable(Dwarf* dw, std::string& problem) {
    Dwarf_Off off = 0, next = 0;
    size_t header = 0;
    for (int units = 0; units < (1 << 20); ++units) {
        int rc = dwarf_nextcu(dw, off, &next, &header, nullptr, nullptr, nullptr);
        if (rc == 1) return true;
        Dwarf_Die die;
        int tag = rc == 0 && dwarf_offdie(dw, off + header, &die) ? dwarf_tag(&die) : DW_TAG_invalid;
        if (tag != DW_TAG_compile_unit && tag != DW_TAG_partial_unit && tag != DW_TAG_skeleton_unit &&
            tag != DW_TAG_type_unit) {
            problem = "DWARF unreadable (the unit at .debug_info offset " + std::to_string(off) + ")";
            return false;
        }
        off = next;
    }
    return true;
}

// Entries of the symbol table libdwfl reads (.symtab, else .dynsym) it
// cannot name (a name offset past the string table, a garbled entry), of
// `count`: a garbled table names nothing, which the report should say.
int unnamed_symbols(Dwfl_Module* mod, int count) {
    int bad = 0;
    for (int i = 1; i < count; ++i) {
        GElf_Sym sym;
        GElf_Off off = 0;
        GElf_Word shndx = 0;
        Elf* elf = nullptr;
        Dwarf_Addr bias = 0;
        if (!dwfl_module_getsym_info(mod, i, &sym, &off, &shndx, &elf, &bias)) ++bad;
    }
    return bad;
}

// Takes ownership of `file.fd`. Returns nullptr if the file is not a usable
// ELF file, with `problem` saying why; a module whose symbols or DWARF
// could not be read is returned with its `problem` set.
std::unique_ptr<Module> load_module(OpenedFile file, const std::string& name, std::string& problem) {
    auto m = std::make_unique<Module>();
    struct stat st {};
    const uint64_t file_size = ::fstat(file.fd.get(), &st) == 0 ? uint64_t(st.st_size) : ~0ull;
    m->dwfl = dwfl_begin(&kOfflineCallbacks);
    if (!m->dwfl) return nullptr;
    dwfl_report_begin(m->dwfl);
    m->mod = dwfl_report_elf(m->dwfl, name.c_str(), file.file_name.c_str(), file.fd.get(),
                             /*base=*/0, /*add_p_vaddr=*/true);
    if (!m->mod) {  // file.fd still ours, closed on return
        problem = dwfl_problem("not an ELF file memtop can read");
        return nullptr;
    }
    file.fd.release();  // now owned by the Dwfl
    dwfl_report_end(m->dwfl, nullptr, nullptr);

    GElf_Addr bias = 0;
    Elf* elf = dwfl_module_getelf(m->mod, &bias);
    if (!elf) {
        problem = dwfl_problem("not an ELF file memtop can read");
        return nullptr;
    }
    m->bias = bias;
    size_t phnum = 0;
    if (elf_getphdrnum(elf, &phnum) != 0) {
        problem = std::string("program headers unreadable (") + elf_errmsg(-1) + ")";
        return nullptr;
    }
    for (size_t i = 0; i < phnum; ++i) {
        GElf_Phdr mem;
        const GElf_Phdr* ph = gelf_getphdr(elf, static_cast<int>(i), &mem);
        if (ph && ph->p_type == PT_LOAD && ph->p_filesz > 0)
            m->segments.push_back({ph->p_offset, ph->p_filesz, ph->p_vaddr, (ph->p_flags & PF_X) != 0});
    }
    if (m->segments.empty()) {
        problem = "no loadable segment";
        return nullptr;
    }
    const unsigned char* id = nullptr;
    GElf_Addr id_vaddr = 0;
    int id_len = dwfl_module_build_id(m->mod, &id, &id_vaddr);
    for (int i = 0; i < id_len; ++i) {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02x", id[i]);
        m->build_id += hex;
    }

    // Look for debug info and the symbol table now, while the /proc paths
    // used to find .gnu_debuglink files still exist. What of them cannot be
    // read is said in the report (take_file_notes()), never silently.
    // Section headers past the file's end (a truncated file, a garbled
    // e_shnum): libelf then reads what sections it can (symbols from the
    // dynamic segment's .dynsym at best); the report says the file was cut.
    std::string unread;
    if (!sections_within(elf, file_size, unread)) unread = "sections unreadable: " + unread;
    Dwarf_Addr dwbias = 0;
    Dwarf* dw = dwfl_module_getdwarf(m->mod, &dwbias);
    // No DWARF is the rule for a distro's files (the separate debug file is
    // not installed): a problem only when the file has DWARF of its own.
    if (!dw && has_section(elf, ".debug_info"))
        unread += (unread.empty() ? "" : "; ") + dwfl_problem("DWARF unreadable");
    else if (std::string why; dw && !dwarf_units_readable(dw, why))
        unread += (unread.empty() ? "" : "; ") + why;
    const int symbols = dwfl_module_getsymtab(m->mod);
    if (symbols > 0)
        m->symbols = SymbolIndex(m->mod);
    else if (symbols < 0)
        unread += (unread.empty() ? "" : "; ") + dwfl_problem("symbol table unreadable");
    if (symbols > 1) {
        if (int bad = unnamed_symbols(m->mod, symbols))
            unread += (unread.empty() ? "" : "; ") + std::string("symbol table garbled (") + std::to_string(bad) +
                      " of " + std::to_string(symbols - 1) + " entries unreadable)";
    }
    m->problem = std::move(unread);
    return m;
}

// "ns::Class::name" for a function DIE without a linkage name (internal
// linkage: static functions, anonymous namespaces), from its declaration's
// enclosing scopes. Parameters are not spelled out.
std::optional<std::string> qualified_die_name(Dwarf_Die* die) {
    Dwarf_Die decl = *die;
    for (int hop = 0; hop < 8; ++hop) {  // follow abstract_origin / specification
        Dwarf_Attribute attr;
        Dwarf_Attribute* ref = dwarf_attr(&decl, DW_AT_abstract_origin, &attr);
        if (!ref) ref = dwarf_attr(&decl, DW_AT_specification, &attr);
        Dwarf_Die next;
        if (!ref || !dwarf_formref_die(ref, &next)) break;
        decl = next;
    }
    const char* name = dwarf_diename(&decl);
    if (!name) return std::nullopt;
    std::string qualified;
    Dwarf_Die* raw = nullptr;
    int n = dwarf_getscopes_die(&decl, &raw);  // [0] is decl, [n-1] the CU
    std::unique_ptr<Dwarf_Die, FreeDeleter> scopes(raw);
    for (int i = n - 2; i >= 1; --i) {
        int tag = dwarf_tag(&raw[i]);
        if (tag != DW_TAG_namespace && tag != DW_TAG_class_type && tag != DW_TAG_structure_type &&
            tag != DW_TAG_union_type)
            continue;
        const char* scope = dwarf_diename(&raw[i]);
        qualified += scope ? scope : (tag == DW_TAG_namespace ? "(anonymous namespace)" : "{unnamed}");
        qualified += "::";
    }
    return qualified + name;
}

std::optional<std::string> die_function_name(Dwarf_Die* die) {
    Dwarf_Attribute attr;
    const char* linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (!linkage) linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
    if (linkage) return demangle(linkage);
    return qualified_die_name(die);
}

// Fills function, offset, file, line and inlined of `f` for the libdwfl
// address `addr` of `m`; `extra` is f.address minus the looked-up address.
void describe(Module& m, Dwarf_Addr addr, uint64_t extra, Frame& f) {
    Dwfl_Module* mod = m.mod;
    if (std::optional<SymbolIndex::Hit> hit = m.symbols.find(addr)) {
        f.function = demangle(hit->name);
        f.offset = hit->offset + extra;
    } else {
        GElf_Off off = 0;
        GElf_Sym sym{};
        GElf_Word shndx = 0;
        Elf* sym_elf = nullptr;
        Dwarf_Addr sym_bias = 0;
        if (const char* name = dwfl_module_addrinfo(mod, addr, &off, &sym, &shndx, &sym_elf, &sym_bias)) {
            f.function = demangle(name);
            f.offset = off + extra;
        }
    }

    std::optional<std::string> file;
    std::optional<int> line;
    if (Dwfl_Line* l = dwfl_module_getsrc(mod, addr)) {
        Dwarf_Addr line_addr = 0;
        int lineno = 0, col = 0;
        Dwarf_Word mtime = 0, length = 0;
        if (const char* src = dwfl_lineinfo(l, &line_addr, &lineno, &col, &mtime, &length)) {
            file = src;
            if (lineno > 0) line = lineno;
        }
    }

    Dwarf_Addr cu_bias = 0;
    if (Dwarf_Die* cudie = dwfl_module_addrdie(mod, addr, &cu_bias)) {
        Dwarf_Die* raw = nullptr;
        int n = dwarf_getscopes(cudie, addr - cu_bias, &raw);
        std::unique_ptr<Dwarf_Die, FreeDeleter> scopes(raw);
        Dwarf_Files* files = nullptr;
        size_t nfiles = 0;
        bool have_files = false;
        for (int i = 0; i < n; ++i) {
            Dwarf_Die* die = &raw[i];
            int tag = dwarf_tag(die);
            if (tag == DW_TAG_subprogram) {
                if (!f.function) {  // no symbol table entry: name it from DWARF
                    f.function = die_function_name(die);
                    Dwarf_Addr low = 0;
                    if (f.function && dwarf_lowpc(die, &low) == 0 && addr - cu_bias >= low)
                        f.offset = addr - cu_bias - low + extra;
                }
                break;
            }
            if (tag != DW_TAG_inlined_subroutine) continue;
            f.inlined.push_back(InlinedFrame{die_function_name(die), file, line});
            // Continue with the call site, a location in the enclosing function.
            if (!have_files) have_files = dwarf_getsrcfiles(cudie, &files, &nfiles) == 0;
            Dwarf_Attribute attr;
            Dwarf_Word v = 0;
            file.reset();
            line.reset();
            if (have_files && dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &v) == 0 && v < nfiles) {
                if (const char* src = dwarf_filesrc(files, v, nullptr, nullptr)) file = src;
            }
            if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &v) == 0 && v > 0 &&
                v <= static_cast<Dwarf_Word>(INT32_MAX))
                line = static_cast<int>(v);
        }
    }
    f.file = std::move(file);
    f.line = line;
}

// A perf map is read up to this many bytes; past it a (runaway or hostile)
// JIT's later entries stay unnamed, and the report says how much was not
// read, rather than memtop's memory growing with the file. 64 MiB is some
// 800,000 lines of JIT code: more live code than any JIT has, though a
// long-running node --perf-basic-prof (which never removes lines) gets there.
constexpr uint64_t kMaxPerfMapBytes = 64ull << 20;

std::string file_type(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    return "something else";
}

// Opens /tmp/perf-NSPID.map as process `pid` sees it. The path is resolved
// inside the process's root (RESOLVE_IN_ROOT): a symlink there that points
// at "/etc/..." stays inside the container rather than reaching the host's
// file, as it would through a plain open of /proc/PID/root/tmp/.... Only a
// regular file owned by the process's user or root counts (perf's own rule):
// another user could create /tmp/perf-PID.map for a pid before it runs.
// A file that is there but refused leaves an empty fd and `why` says why;
// none there (or the process gone) leaves both empty.
UniqueFd open_perf_map(int pid, int nspid, struct stat& st, std::string& why) {
    why.clear();
    const std::string proc = "/proc/" + std::to_string(pid);
    UniqueFd root(::open((proc + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return UniqueFd();
    const std::string rel = "tmp/perf-" + std::to_string(nspid) + ".map";
    struct open_how how {};
    // O_NONBLOCK: a FIFO there must not block memtop.
    // O_NOFOLLOW: a perf map that is a symlink is refused. Inside the root a
    // link to /etc/shadow would still reach the target's (for a process
    // not in a container, the host's) root-owned secrets, which the owner
    // check below lets through as root's.
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    UniqueFd fd;
    for (int attempt = 0; attempt < 3 && !fd; ++attempt) {  // EAGAIN: a rename raced the resolution
        fd = UniqueFd(static_cast<int>(::syscall(SYS_openat2, root.get(), rel.c_str(), &how, sizeof how)));
        if (!fd && errno != EAGAIN) break;
    }
    if (!fd && errno == ENOSYS)  // before 5.6, or a seccomp filter: no symlink at the end at least
        fd = UniqueFd(::openat(root.get(), rel.c_str(), static_cast<int>(how.flags)));
    if (!fd) {
        const int err = errno;
        if (err == ELOOP)
            why = "a symlink (not followed)";
        else if (err == ENXIO)  // a socket
            why = "not a regular file";
        else if (err != ENOENT && err != ENOTDIR && err != ESRCH)
            why = std::string("could not be opened: ") + std::strerror(err);
        return UniqueFd();
    }
    struct stat owner {};
    if (::fstat(fd.get(), &st) != 0) {
        why = std::string("could not be read: ") + std::strerror(errno);
        return UniqueFd();
    }
    if (!S_ISREG(st.st_mode)) {
        why = file_type(st.st_mode) + ", not a regular file";
        return UniqueFd();
    }
    if (::stat(proc.c_str(), &owner) != 0) return UniqueFd();  // the process is gone
    if (st.st_uid != 0 && st.st_uid != owner.st_uid) {
        why = "owned by uid " + std::to_string(st.st_uid) + ", neither the process's user (uid " +
              std::to_string(owner.st_uid) + ") nor root";
        return UniqueFd();
    }
    return fd;
}

// What was read of one process's perf map.
struct PerfMapState {
    int nspid = 0;  // 0: not known yet
    bool read = false;
    uint64_t dev = 0, ino = 0, size = 0;
    struct timespec mtime {};
    PerfMapCursor cursor;
    PerfMap table;
    std::string label;  // "[perf-NSPID.map]"
    std::string path;   // "/tmp/perf-NSPID.map", as the process sees it
    // What the report says of it: found at all, refused, lines skipped.
    bool seen = false;
    std::string rejected;
    uint64_t overlapping = 0;
    uint64_t bytes_unread = 0;
    // The worker crashed or hung on this process's map: why. Kept over new
    // files (restart()): the process can write another as fast as memtop
    // would start workers to read them.
    std::string worker_failed;

    // A new file (or the first): what was said of the old one goes too.
    void restart() {
        table.clear();
        cursor = {};
        rejected.clear();
        overlapping = 0;
        bytes_unread = 0;
    }
    void reject(std::string why) {
        table.clear();
        rejected = std::move(why);
    }
};

// ---- The worker's side: it parses, memtop opens ----

int g_worker_socket = -1;  // in the worker: its socket to memtop
Symbolizer::WorkerFileHook g_worker_file_hook = nullptr;
// Test seam (docs/testing.md): the worker hangs before it reads a file
// whose path ends with this, from $MEMTOP_TEST_WORKER_HANG_ON.
std::string g_worker_hang_on;

// In the worker, before it reads the file memtop calls `path`: the test
// seams.
void before_reading(const std::string& path) {
    if (g_worker_file_hook) g_worker_file_hook(path);
    if (ends_with_suffix(path, g_worker_hang_on)) {
        // What a parser that loops does: never answer (poll() is allowed
        // by the seccomp filter; pause() is not).
        for (;;) ::poll(nullptr, 0, -1);
    }
}

// Text of a perf map parsed per request: the reply (entries) stays within
// a few times this.
constexpr uint64_t kPerfMapRequestBytes = 4ull << 20;

void put_described(wire::Writer& w, const Described& d) {
    w.opt_str(d.function).num<uint8_t>(d.offset.has_value()).num<uint64_t>(d.offset.value_or(0));
    w.opt_str(d.file).num<uint8_t>(d.line.has_value()).num<int32_t>(d.line.value_or(0));
    w.num(static_cast<uint32_t>(d.inlined.size()));
    for (const InlinedFrame& i : d.inlined)
        w.opt_str(i.function).opt_str(i.file).num<uint8_t>(i.line.has_value()).num<int32_t>(i.line.value_or(0));
}

// No DWARF nests inlined calls this deep; a reply that says so is garbled.
constexpr uint32_t kMaxInlined = 4096;

bool get_described(wire::Reader& r, Described& d) {
    uint8_t has = 0;
    uint64_t offset = 0;
    int32_t line = 0;
    uint32_t n = 0;
    if (!r.opt_str(d.function) || !r.num(has) || !r.num(offset)) return false;
    if (has) d.offset = offset;
    if (!r.opt_str(d.file) || !r.num(has) || !r.num(line)) return false;
    if (has) d.line = line;
    if (!r.num(n) || n > kMaxInlined) return false;
    d.inlined.resize(n);
    for (InlinedFrame& i : d.inlined) {
        if (!r.opt_str(i.function) || !r.opt_str(i.file) || !r.num(has) || !r.num(line)) return false;
        if (has) i.line = line;
    }
    return true;
}

std::string hex(const unsigned char* p, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
        char h[3];
        std::snprintf(h, sizeof h, "%02x", p[i]);
        out += h;
    }
    return out;
}

// Whether the ELF file `fd` carries build-id `id`.
bool has_build_id(int fd, const unsigned char* id, int n) {
    Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (!elf) return false;
    const void* got = nullptr;
    ssize_t len = dwelf_elf_gnu_build_id(elf, &got);
    bool same = len == n && std::memcmp(got, id, size_t(n)) == 0;
    elf_end(elf);
    return same;
}

int worker_find_debuginfo(Dwfl_Module* mod, void**, const char*, Dwarf_Addr, const char*, const char* debuglink_file,
                          GElf_Word, char**) {
    if (g_worker_socket < 0) return -1;
    const unsigned char* id = nullptr;
    GElf_Addr id_vaddr = 0;
    const int id_len = dwfl_module_build_id(mod, &id, &id_vaddr);
    wire::Writer w('g');
    w.str(id_len > 0 ? hex(id, id_len) : std::string()).str(debuglink_file ? debuglink_file : "");
    if (!send_message(g_worker_socket, w.bytes())) return -1;
    std::string reply;
    UniqueFd fd;
    if (receive_message(g_worker_socket, reply, &fd, -1) != ReceiveStatus::Ok || reply != "G" || !fd) return -1;
    // A debug file found by its debuglink name must be this file's.
    if (id_len > 0 && !has_build_id(fd.get(), id, id_len)) return -1;
    return fd.release();
}

// The worker's loop: loads the files it is handed ('L': id, path; the
// descriptor attached) and names addresses in them ('D': id, addresses).
void serve_worker(int sock) {
    g_worker_socket = sock;
    elf_version(EV_CURRENT);
    std::unordered_map<uint32_t, std::unique_ptr<Module>> modules;
    for (;;) {
        std::string msg;
        UniqueFd fd;
        if (receive_message(sock, msg, &fd, -1) != ReceiveStatus::Ok) return;
        wire::Reader r(msg);
        const char type = r.type();
        uint32_t id = 0;
        if (type == 'L') {
            std::string name;
            if (!r.num(id) || !r.str(name) || !fd) return;
            before_reading(name);
            std::string problem;
            std::unique_ptr<Module> m = load_module(OpenedFile{std::move(fd), name}, name, problem);
            wire::Writer w('l');
            w.num<uint8_t>(m != nullptr);
            if (m) {
                w.str(m->problem).num<uint64_t>(m->bias).str(m->build_id);
                w.num(static_cast<uint32_t>(m->segments.size()));
                for (const Segment& s : m->segments) w.num(s.offset).num(s.filesz).num(s.vaddr).num<uint8_t>(s.exec);
                modules[id] = std::move(m);
            } else {
                w.str(problem);
            }
            if (!send_message(sock, w.bytes())) return;
        } else if (type == 'U') {
            // A file memtop has not needed for a while: what libdw built of
            // it (its symbol table, line tables, the mapped file) goes, and
            // the freed heap back to the kernel, or the worker keeps the
            // most it ever held. memtop loads it again when it needs it.
            if (!r.num(id)) return;
            modules.erase(id);
            release_free_heap();
            if (!send_message(sock, "u")) return;
        } else if (type == 'D') {
            uint32_t n = 0;
            if (!r.num(id) || !r.num(n)) return;
            auto it = modules.find(id);
            wire::Writer w('d');
            for (uint32_t i = 0; i < n; ++i) {
                uint64_t addr = 0, extra = 0;
                if (!r.num(addr) || !r.num(extra)) return;
                Frame f;
                if (it != modules.end()) describe(*it->second, addr, extra, f);
                put_described(w, Described{f.function, f.offset, f.file, f.line, f.inlined});
            }
            if (!send_message(sock, w.bytes())) return;
        } else if (type == 'P') {
            // A perf map: path (for the test seams), where memtop's parse
            // left off, up to where to read; the descriptor attached.
            std::string path;
            PerfMapCursor c;
            uint64_t end = 0;
            uint8_t in_long_line = 0;
            if (!r.str(path) || !r.num(c.consumed) || !r.num(end) || !r.num(in_long_line) || !r.num(c.lines.good) ||
                !r.num(c.lines.malformed) || !r.num(c.lines.absurd) || !fd)
                return;
            c.in_long_line = in_long_line != 0;
            before_reading(path);
            // The reply: where the parse stopped, the line counts, the
            // number of entries, the entries, whether there is more, why the
            // file is not a perf map. The entries go straight into it (no
            // copy of each name); the header is filled in after the parse.
            wire::Writer w('p');
            const size_t header = w.size();
            w.num(c.consumed).num<uint8_t>(0).num(c.lines.good).num(c.lines.malformed).num(c.lines.absurd);
            w.num<uint32_t>(0);
            uint32_t n = 0;
            bool more = false;
            const std::string rejected = read_perf_map_fd(
                fd.get(), end, kPerfMapRequestBytes, kPerfMapChunk, c,
                [&](uint64_t start, uint64_t size, std::string_view name) {
                    w.num(start).num(size).str(name);
                    ++n;
                },
                more);
            size_t at = header;
            auto patch = [&](auto v) {
                w.put_at(at, v);
                at += sizeof v;
            };
            patch(c.consumed);
            patch(static_cast<uint8_t>(c.in_long_line));
            patch(c.lines.good);
            patch(c.lines.malformed);
            patch(c.lines.absurd);
            patch(n);
            w.num<uint8_t>(more).str(rejected);
            if (!send_message(sock, w.bytes())) return;
        } else {
            return;
        }
    }
}

// ---- memtop's side ----

// A request the worker has not answered in this long (a file that makes
// libdw loop) ends the worker; the file is then not read. Tests shorten it
// ($MEMTOP_TEST_WORKER_TIMEOUT_MS, docs/testing.md).
constexpr int kWorkerTimeoutMs = 60000;

// A file of a traced process, as memtop knows it: what the worker said of
// it when it loaded it, and the names it gave.
struct RemoteModule {
    uint32_t id = 0;
    UniqueFd fd;       // kept to load it again into a restarted worker
    std::string path;  // as mapped
    int pid = 0;       // a process that maps it: where its debug file is looked for
    uint64_t bias = 0;
    std::vector<Segment> segments;
    std::string build_id;
    std::string problem;     // what of it the worker could not read
    uint64_t loaded_in = 0;  // the worker (generation) it is loaded in
    uint64_t used_in = 0;    // the last naming pass (Impl::pass) that needed it loaded
    // The worker ended while reading it: why. Its frames stay unnamed.
    std::string failed;
    // By libdwfl address * 2 + (whether the frame's address is one past it).
    std::unordered_map<uint64_t, Described> described;
};

// The separate debug file of `m` (what libdwfl's standard search finds):
// by build-id under the host's /usr/lib/debug (installed by root's package
// manager), else by its .gnu_debuglink name next to the file, in .debug/
// there, and under /usr/lib/debug.
UniqueFd open_debug_file(const RemoteModule& m, const std::string& build_id, const std::string& debuglink) {
    const bool hex_only = build_id.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (build_id.size() > 2 && hex_only) {
        if (UniqueFd fd = open_in_root(
                0, "/usr/lib/debug/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug"))
            return fd;
    }
    if (debuglink.empty() || debuglink.find('/') != std::string::npos || debuglink == "." || debuglink == "..")
        return UniqueFd();
    const size_t slash = m.path.rfind('/');
    if (slash == std::string::npos || m.path.front() != '/') return UniqueFd();
    const std::string dir = m.path.substr(0, slash);
    for (const std::string& p : {dir + "/" + debuglink, dir + "/.debug/" + debuglink}) {
        if (UniqueFd fd = open_in_root(m.pid, p)) return fd;
    }
    return open_in_root(0, "/usr/lib/debug" + dir + "/" + debuglink);
}

}  // namespace

struct Symbolizer::Impl {
    std::map<FileId, std::unique_ptr<RemoteModule>> modules;
    std::map<FileId, std::string> unusable;  // opened, but not a usable ELF file: why
    // Files with a problem that frames were looked up in since
    // take_file_notes(): what the next report says of them.
    std::map<FileId, SymbolFileNote> noted;
    std::map<int, PerfMapState> perf_maps;  // by pid

    WorkerClient worker{"memtop-symbols", "symbolization worker", serve_worker, kWorkerTimeoutMs};
    uint32_t next_id = 1;
    uint64_t pass = 1;  // naming passes (reports) so far: release_idle() counts them

    // Unloads from the worker the files no pass needed in the last
    // `idle_passes` (their names given so far stay cached here).
    void release_idle(uint64_t idle_passes) {
        if (worker.running())
            for (auto& [id, m] : modules) {
                if (m->loaded_in != worker.generation() || pass - m->used_in <= idle_passes) continue;
                std::string reply, failed;
                if (!call(wire::Writer('U').num(m->id).bytes(), -1, nullptr, reply, failed) || reply != "u") break;
                m->loaded_in = 0;
            }
        pass++;
    }

    Impl() {
        // Test seam (docs/testing.md): a file the worker hangs on. memtop's
        // users do not set it.
        g_worker_hang_on = test_env("MEMTOP_TEST_WORKER_HANG_ON");
    }

    void note(const FileId& id, const std::string& path, const std::string& problem) {
        if (problem.empty() || noted.count(id)) return;
        noted.emplace(id, SymbolFileNote{path, problem});
    }

    // Sends `request` (with `fd`) and waits for the reply, serving the
    // worker's requests for the debug files of module `debug_for` (if any)
    // meanwhile. If the worker dies or does not answer in time, it is gone
    // (the next request starts another) and `failed` says why.
    bool call(const std::string& request, int fd, const RemoteModule* debug_for, std::string& reply,
              std::string& failed) {
        return worker.call(request, fd, reply, failed, [&](const std::string& msg, int sock) {
            if (msg.empty() || msg[0] != 'g') return false;
            wire::Reader r(msg);
            r.type();
            std::string build_id, debuglink;
            UniqueFd debug;
            if (debug_for && r.str(build_id) && r.str(debuglink))
                debug = open_debug_file(*debug_for, build_id, debuglink);
            return send_message(sock, "G", debug.get());
        });
    }

    // Loads `m` into the current worker (again, after a restart).
    bool ensure_loaded(RemoteModule& m) {
        if (!m.failed.empty()) return false;
        m.used_in = pass;
        if (worker.running() && m.loaded_in == worker.generation()) return true;
        std::string reply;
        if (!call(wire::Writer('L').num(m.id).str(m.path).bytes(), m.fd.get(), &m, reply, m.failed)) return false;
        m.loaded_in = worker.generation();
        wire::Reader r(reply);
        r.type();
        uint8_t ok = 0;
        std::string problem;
        if (!r.num(ok) || !r.str(problem)) ok = 0;
        if (!ok) {
            m.failed = problem.empty() ? "not an ELF file memtop can read" : problem;
            return false;
        }
        uint32_t nseg = 0;
        std::vector<Segment> segments;
        if (r.num(m.bias) && r.str(m.build_id) && r.num(nseg) && nseg < 65536) {
            for (uint32_t i = 0; i < nseg; ++i) {
                Segment s{};
                uint8_t exec = 0;
                if (!r.num(s.offset) || !r.num(s.filesz) || !r.num(s.vaddr) || !r.num(exec)) break;
                s.exec = exec != 0;
                segments.push_back(s);
            }
        }
        if (!r.ok()) {
            m.failed = worker.discard();
            return false;
        }
        m.segments = std::move(segments);
        m.problem = std::move(problem);
        return true;
    }

    // The module of mapping `m` (loaded), or null: the file could not be
    // opened, is not a usable ELF file, or the worker failed on it.
    RemoteModule* module_for(int pid, const Mapping& m) {
        FileId id{m.dev, m.ino};
        if (auto it = modules.find(id); it != modules.end()) {
            RemoteModule& mod = *it->second;
            note(id, m.path, mod.failed.empty() ? mod.problem : mod.failed);
            return mod.failed.empty() ? &mod : nullptr;
        }
        if (auto it = unusable.find(id); it != unusable.end()) {
            note(id, m.path, it->second);
            return nullptr;
        }
        // Failures to open are not remembered (another process mapping the
        // same file may still be alive), but said.
        std::optional<OpenedFile> file = open_mapped_file(pid, m);
        if (!file) {
            note(id, m.path, "could not be opened (neither through /proc/PID/map_files nor by its path)");
            return nullptr;
        }
        auto mod = std::make_unique<RemoteModule>();
        mod->id = next_id++;
        mod->fd = std::move(file->fd);
        mod->path = m.path;
        mod->pid = pid;
        if (!ensure_loaded(*mod)) {
            note(id, m.path, mod->failed);
            unusable.emplace(id, mod->failed);
            return nullptr;
        }
        note(id, m.path, mod->problem);
        return modules.emplace(id, std::move(mod)).first->second.get();
    }

    // Names the addresses `todo` (frame index, libdwfl address) of `m` in
    // one request.
    void describe(RemoteModule& m, const std::vector<std::pair<size_t, uint64_t>>& todo, std::vector<Frame>& frames,
                  const std::vector<uint64_t>& extra) {
        if (!ensure_loaded(m)) return;
        wire::Writer w('D');
        w.num(m.id).num(static_cast<uint32_t>(todo.size()));
        for (const auto& [i, addr] : todo) w.num(addr).num(extra[i]);
        std::string reply;
        if (!call(w.bytes(), -1, &m, reply, m.failed)) return;
        wire::Reader r(reply);
        r.type();
        std::vector<Described> got(todo.size());
        for (Described& d : got) {
            if (!get_described(r, d)) {
                m.failed = worker.discard();
                return;
            }
        }
        if (m.described.size() + got.size() > kMaxDescribedPerModule) m.described.clear();
        for (size_t k = 0; k < todo.size(); ++k) {
            const auto& [i, addr] = todo[k];
            fill(frames[i], got[k]);
            m.described.emplace(addr * 2 + (extra[i] != 0), std::move(got[k]));
        }
    }

    // Addresses to describe at the next flush(), by module: (libdwfl
    // address, one past it?), each once.
    std::map<RemoteModule*, std::set<std::pair<uint64_t, uint64_t>>> prefetched;

    void prefetch(int pid, const std::vector<Mapping>& maps, AddressKind first, const std::vector<uint64_t>& ips) {
        for (size_t i = 0; i < ips.size(); ++i) {
            const AddressKind kind = i == 0 ? first : AddressKind::Return;
            const uint64_t lookup = kind == AddressKind::Return && ips[i] > 0 ? ips[i] - 1 : ips[i];
            const Mapping* m = find_mapping(maps, lookup);
            if (!m || m->ino == 0 || m->path == "[vdso]" || m->path == "[vsyscall]") continue;
            RemoteModule* mod = module_for(pid, *m);
            if (!mod) continue;
            const bool exec = m->perms.size() > 2 && m->perms[2] == 'x';
            std::optional<uint64_t> vaddr = vaddr_of(mod->segments, lookup - m->start + m->pgoff, exec);
            if (!vaddr) continue;
            const uint64_t addr = *vaddr + mod->bias, extra = ips[i] - lookup;
            if (!mod->described.count(addr * 2 + (extra != 0))) prefetched[mod].emplace(addr, extra);
        }
    }

    // Describes what prefetch() gathered, in requests of up to this many
    // addresses (each answered within the worker's timeout).
    static constexpr size_t kBatch = 4096;
    void flush() {
        for (auto& [mod, set] : prefetched) {
            std::vector<std::pair<uint64_t, uint64_t>> all(set.begin(), set.end());
            for (size_t from = 0; from < all.size() && mod->failed.empty(); from += kBatch) {
                const size_t n = std::min(kBatch, all.size() - from);
                std::vector<Frame> frames(n);
                std::vector<uint64_t> extra(n);
                std::vector<std::pair<size_t, uint64_t>> todo(n);
                for (size_t k = 0; k < n; ++k) {
                    todo[k] = {k, all[from + k].first};
                    extra[k] = all[from + k].second;
                }
                describe(*mod, todo, frames, extra);
            }
        }
        prefetched.clear();
    }

    // Has the worker parse what was appended to perf map `fd` since
    // st.cursor, up to `end`, and adds what it found to st.table. The
    // worker's reply is checked as the parser's own output would be: a
    // worker that was made to lie names nothing it could not have.
    void read_perf_map(int fd, uint64_t end, PerfMapState& st) {
        if (!st.worker_failed.empty()) {
            st.reject(st.worker_failed);
            return;
        }
        while (st.cursor.consumed < end && st.rejected.empty()) {
            const PerfMapCursor& c = st.cursor;
            wire::Writer w('P');
            w.str(st.path).num(c.consumed).num(end).num<uint8_t>(c.in_long_line);
            w.num(c.lines.good).num(c.lines.malformed).num(c.lines.absurd);
            std::string reply, failed;
            if (!call(w.bytes(), fd, nullptr, reply, failed)) {
                st.worker_failed = std::move(failed);
                st.reject(st.worker_failed);
                return;
            }
            wire::Reader r(reply);
            r.type();
            PerfMapCursor next;
            uint8_t in_long_line = 0, more = 0;
            uint32_t n = 0;
            bool ok = r.num(next.consumed) && r.num(in_long_line) && r.num(next.lines.good) &&
                      r.num(next.lines.malformed) && r.num(next.lines.absurd) && r.num(n) &&
                      next.consumed >= c.consumed && next.consumed <= end && next.lines.good >= c.lines.good &&
                      next.lines.good - c.lines.good == n && next.lines.malformed >= c.lines.malformed &&
                      next.lines.absurd >= c.lines.absurd;
            // Into the table as they are decoded: a garbled reply rejects
            // the whole map below, which empties the table.
            for (uint32_t i = 0; ok && i < n; ++i) {
                uint64_t start = 0, size = 0;
                std::string_view name;
                ok = r.num(start) && r.num(size) && r.view(name) && !name.empty() && size > 0 &&
                     size <= kMaxPerfMapEntrySize && start < kPerfMapAddressLimit &&
                     size <= kPerfMapAddressLimit - start && name.find('\n') == std::string_view::npos;
                if (ok) st.overlapping += st.table.add(start, size, name) ? 1 : 0;
            }
            std::string rejected;
            ok = ok && r.num(more) && r.str(rejected);
            if (!ok) {
                st.worker_failed = worker.discard();
                st.reject(st.worker_failed);
                return;
            }
            next.in_long_line = in_long_line != 0;
            const bool progressed = next.consumed > c.consumed;
            st.cursor = next;
            if (!rejected.empty()) st.reject(std::move(rejected));
            if (!more || !progressed) return;
        }
    }

    void refresh(int pid, PerfMapState& st) {
        if (st.nspid == 0) {
            auto status = read_proc_status(pid, nullptr);
            if (!status) return;                                            // gone: keep what was read
            st.nspid = status->nspid.empty() ? pid : status->nspid.back();  // no NSpid before 4.1: one namespace
            st.label = "[perf-" + std::to_string(st.nspid) + ".map]";
            st.path = "/tmp/perf-" + std::to_string(st.nspid) + ".map";
        }
        struct stat fs {};
        std::string why;
        UniqueFd fd = open_perf_map(pid, st.nspid, fs, why);
        if (!fd) {
            // Refused: nothing of it names a frame, not even what an earlier
            // file there named. Not there (removed, or the process is gone):
            // keep what was read.
            if (!why.empty()) {
                st.restart();
                st.reject(std::move(why));
                st.seen = true;
                st.read = false;
            }
            return;
        }
        st.seen = true;
        if (st.read && st.dev == fs.st_dev && st.ino == fs.st_ino && st.size == uint64_t(fs.st_size) &&
            st.mtime.tv_sec == fs.st_mtim.tv_sec && st.mtime.tv_nsec == fs.st_mtim.tv_nsec)
            return;
        // JITs only append: the same file grown is read on from where it was
        // left. Another file, or a shorter one, is a new map.
        if (!st.read || st.dev != fs.st_dev || st.ino != fs.st_ino || uint64_t(fs.st_size) < st.cursor.consumed)
            st.restart();
        st.read = true;
        st.dev = fs.st_dev;
        st.ino = fs.st_ino;
        st.size = fs.st_size;
        st.mtime = fs.st_mtim;
        st.bytes_unread = uint64_t(fs.st_size) > kMaxPerfMapBytes ? uint64_t(fs.st_size) - kMaxPerfMapBytes : 0;
        read_perf_map(fd.get(), std::min<uint64_t>(fs.st_size, kMaxPerfMapBytes), st);
    }

    static void fill(Frame& f, const Described& d) {
        f.function = d.function;
        f.offset = d.offset;
        f.file = d.file;
        f.line = d.line;
        f.inlined = d.inlined;
    }

    // Names f from pid's perf map; `fresh`: the map was refreshed already
    // during this stack, so one stack costs at most one open.
    void name_from_perf_map(int pid, uint64_t lookup, bool& fresh, Frame& f) {
        if (pid <= 0) return;
        if (!fresh) {
            refresh(pid, perf_maps[pid]);
            fresh = true;
        }
        auto it = perf_maps.find(pid);
        if (it == perf_maps.end()) return;
        auto hit = it->second.table.find(lookup);
        if (!hit) return;
        f.function = *hit->name;
        f.offset = f.address - hit->start;
        f.module = it->second.label;
        f.file.reset();
        f.line.reset();
        f.inlined.clear();
    }

    // Names `frames` (their addresses set): what is cached at once, the
    // rest in one request per module, then what no ELF file names from the
    // perf map.
    void resolve(int pid, const std::vector<Mapping>& maps, AddressKind first, std::vector<Frame>& frames) {
        std::vector<uint64_t> extra(frames.size(), 0);
        std::map<RemoteModule*, std::vector<std::pair<size_t, uint64_t>>> todo;
        for (size_t i = 0; i < frames.size(); ++i) {
            Frame& f = frames[i];
            const AddressKind kind = i == 0 ? first : AddressKind::Return;
            const uint64_t lookup = kind == AddressKind::Return && f.address > 0 ? f.address - 1 : f.address;
            extra[i] = f.address - lookup;
            const Mapping* m = find_mapping(maps, lookup);
            if (m && (m->path == "[vdso]" || m->path == "[vsyscall]")) {
                f.module = m->path;
                continue;
            }
            if (!m || m->ino == 0) continue;  // anonymous memory, [heap], [stack], ...
            f.module = m->path;
            f.mapping = FrameMapping{m->start, m->end, m->pgoff, {}};
            RemoteModule* mod = module_for(pid, *m);
            if (!mod) continue;
            f.mapping->build_id = mod->build_id;
            const bool exec = m->perms.size() > 2 && m->perms[2] == 'x';
            std::optional<uint64_t> vaddr = vaddr_of(mod->segments, lookup - m->start + m->pgoff, exec);
            if (!vaddr) continue;
            const uint64_t addr = *vaddr + mod->bias;
            if (auto it = mod->described.find(addr * 2 + (extra[i] != 0)); it != mod->described.end())
                fill(f, it->second);
            else
                todo[mod].emplace_back(i, addr);
        }
        for (auto& [mod, list] : todo) {
            describe(*mod, list, frames, extra);
            if (!mod->failed.empty()) {
                for (auto& [id, m] : modules) {
                    if (m.get() == mod) note(id, mod->path, mod->failed);
                }
            }
        }
        // No ELF file names it: JIT code, in anonymous memory (or a memfd, or
        // mapped after the maps were read), which only its perf map names.
        bool perf_fresh = false;
        for (size_t i = 0; i < frames.size(); ++i) {
            if (!frames[i].function) name_from_perf_map(pid, frames[i].address - extra[i], perf_fresh, frames[i]);
        }
    }
};

Symbolizer::Symbolizer() : impl_(std::make_unique<Impl>()) {}
Symbolizer::~Symbolizer() = default;
Symbolizer::Symbolizer(Symbolizer&&) noexcept = default;
Symbolizer& Symbolizer::operator=(Symbolizer&&) noexcept = default;

Frame Symbolizer::resolve(int pid, const std::vector<Mapping>& maps, uint64_t address) noexcept {
    return resolve(pid, maps, address, AddressKind::Return);
}

Frame Symbolizer::resolve(int pid, const std::vector<Mapping>& maps, uint64_t address, AddressKind kind) noexcept {
    std::vector<Frame> frames(1);
    frames[0].address = address;
    if (!impl_) return frames[0];
    try {
        impl_->resolve(pid, maps, kind, frames);
    } catch (...) {
        // Out of memory: keep what was found.
    }
    return frames[0];
}

std::vector<Frame> Symbolizer::resolve_stack(int pid, const std::vector<Mapping>& maps,
                                             const std::vector<uint64_t>& addresses, AddressKind first) {
    std::vector<Frame> frames(addresses.size());
    for (size_t i = 0; i < addresses.size(); ++i) frames[i].address = addresses[i];
    if (impl_) {
        try {
            impl_->resolve(pid, maps, first, frames);
        } catch (...) {
            // Out of memory: keep what was found.
        }
    }
    return frames;
}

void Symbolizer::prefetch(int pid, const std::vector<Mapping>& maps, const std::vector<uint64_t>& addresses,
                          AddressKind first) noexcept {
    if (!impl_) return;
    try {
        impl_->prefetch(pid, maps, first, addresses);
    } catch (...) {
        // Out of memory: named one stack at a time instead.
    }
}

void Symbolizer::flush_prefetched() noexcept {
    if (!impl_) return;
    try {
        impl_->flush();
    } catch (...) {
        impl_->prefetched.clear();
    }
}

pid_t Symbolizer::worker_pid() const {
    return impl_ ? impl_->worker.pid() : 0;
}

void Symbolizer::set_worker_file_hook_for_tests(WorkerFileHook hook) {
    g_worker_file_hook = hook;
}

void Symbolizer::refresh_perf_map(int pid) noexcept {
    if (!impl_ || pid <= 0) return;
    try {
        impl_->refresh(pid, impl_->perf_maps[pid]);
    } catch (...) {
        // Out of memory: the map stays as it was.
    }
}

void Symbolizer::forget_process(int pid) noexcept {
    if (impl_) impl_->perf_maps.erase(pid);
}

size_t Symbolizer::cached_modules() const {
    return impl_ ? impl_->modules.size() : 0;
}

size_t Symbolizer::loaded_modules() const {
    if (!impl_ || !impl_->worker.running()) return 0;
    size_t n = 0;
    for (const auto& [id, m] : impl_->modules) n += m->loaded_in == impl_->worker.generation();
    return n;
}

void Symbolizer::release_idle(uint64_t idle_passes) noexcept {
    try {
        if (impl_) impl_->release_idle(idle_passes);
    } catch (const std::exception&) {
        // Memory, at worst: the files stay loaded.
    }
}

std::vector<SymbolFileNote> Symbolizer::take_file_notes() noexcept {
    std::vector<SymbolFileNote> out;
    if (!impl_) return out;
    try {
        for (auto& [id, n] : impl_->noted) out.push_back(std::move(n));
    } catch (...) {
        // Out of memory: what was taken is said.
    }
    impl_->noted.clear();
    return out;
}

std::optional<PerfMapNote> Symbolizer::perf_map_note(int pid) const {
    if (!impl_) return std::nullopt;
    auto it = impl_->perf_maps.find(pid);
    if (it == impl_->perf_maps.end() || !it->second.seen) return std::nullopt;
    const PerfMapState& st = it->second;
    PerfMapNote n;
    n.pid = static_cast<uint32_t>(pid);
    n.file = st.path;
    n.rejected = st.rejected;
    n.lines_used = st.rejected.empty() ? st.cursor.lines.good : 0;
    n.lines_malformed = st.cursor.lines.malformed;
    n.lines_absurd = st.cursor.lines.absurd;
    n.lines_overlapping = st.overlapping;
    n.bytes_unread = st.bytes_unread;
    return n;
}

size_t Symbolizer::perf_map_pieces(int pid) const {
    if (!impl_) return 0;
    auto it = impl_->perf_maps.find(pid);
    return it == impl_->perf_maps.end() ? 0 : it->second.table.pieces();
}

}  // namespace memtop
