// Symbolization throughput: frames per second of Symbolizer::resolve_stack
// on a real, running process, with a cold cache (a fresh Symbolizer: opening
// each module and reading its symbols, debug info and line tables is part of
// the cost) and a warm one (the same Symbolizer, the same frames again); and
// how fast build_cfi_table turns each file's CFI into unwind rows.
//
//   symbolize_bench [--frames N] [--rounds R] [--stack S] [--cfi-only] [PROGRAM]
//
// PROGRAM (default: the deep_sites test program) is started with --wait and
// stays parked at its first read (tests/progs/common.h), mapped as it runs.
// The frames are N distinct return addresses inside the functions of every
// file it maps (symbol tables read with libelf, a pseudo-random point in each
// function), shuffled, in stacks of S. Times are medians over R rounds, each
// with a fresh Symbolizer. Needs no root (then files are opened by path
// rather than through /proc/PID/map_files).
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "attach/elf_image.h"
#include "attach/program_files.h"
#include "kernel/unwind/cfi_table.h"
#include "kernel/unwind/cfi_worker.h"
#include "procinfo/proc_maps.h"
#include "symbolize/symbolizer.h"
#include "util/errors.h"

#ifndef DEEP_SITES_PATH
#define DEEP_SITES_PATH ""
#endif

using namespace memtop;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

[[noreturn]] void die(const std::string& msg) {
    fprintf(stderr, "symbolize_bench: %s\n", msg.c_str());
    exit(1);
}

// PROGRAM --wait, parked until its stdin closes.
struct Target {
    pid_t pid = -1;
    int in = -1;
    explicit Target(const std::string& exe) {
        int inp[2], outp[2];
        if (pipe2(inp, O_CLOEXEC) || pipe2(outp, O_CLOEXEC)) die("pipe: " + std::string(strerror(errno)));
        pid = fork();
        if (pid == 0) {
            dup2(inp[0], 0);
            dup2(outp[1], 1);
            execl(exe.c_str(), exe.c_str(), "--wait", (char*)nullptr);
            _exit(127);
        }
        close(inp[0]);
        close(outp[1]);
        in = inp[1];
        std::string line;
        char c;
        while (read(outp[0], &c, 1) == 1 && c != '\n') line += c;
        close(outp[0]);
        if (line.rfind("ready ", 0) != 0) die("start " + exe + " --wait: no \"ready\" line");
    }
    ~Target() {
        close(in);  // EOF: the program leaves
        kill(pid, SIGTERM);
        waitpid(pid, nullptr, 0);
    }
};

struct Candidate {
    uint64_t addr;  // runtime address of a function's start
    uint64_t size;
    std::string module;
    uint64_t file_offset;  // of the start: orders candidates the same in every run, whatever ASLR did
};

// The functions (from .symtab and .dynsym) of the file mapped by `m`, at
// their addresses in the process.
void functions_of(int pid, const Mapping& m, std::vector<Candidate>& out) {
    char mf[96];
    snprintf(mf, sizeof mf, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m.start, m.end);
    int fd = open(mf, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fd = open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    std::set<uint64_t> seen;
    size_t nph = 0;
    if (elf && elf_kind(elf) == ELF_K_ELF && elf_getphdrnum(elf, &nph) == 0) {
        struct Seg {
            uint64_t vaddr, memsz, offset;
        };
        std::vector<Seg> segs;
        for (size_t i = 0; i < nph; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(elf, int(i), &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
                segs.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset});
        }
        for (Elf_Scn* s = nullptr; (s = elf_nextscn(elf, s));) {
            GElf_Shdr sh;
            if (!gelf_getshdr(s, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) || !sh.sh_entsize)
                continue;
            Elf_Data* d = elf_getdata(s, nullptr);
            for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
                GElf_Sym sym;
                if (!gelf_getsym(d, int(i), &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size < 2 ||
                    sym.st_shndx == SHN_UNDEF)
                    continue;
                for (const auto& sg : segs) {
                    if (sym.st_value < sg.vaddr || sym.st_value + sym.st_size > sg.vaddr + sg.memsz) continue;
                    uint64_t off = sym.st_value - sg.vaddr + sg.offset;
                    if (off < m.pgoff || off + sym.st_size > m.pgoff + (m.end - m.start)) continue;
                    uint64_t addr = m.start + (off - m.pgoff);
                    if (seen.insert(addr).second) out.push_back({addr, sym.st_size, m.path, off});
                }
            }
        }
    }
    if (elf) elf_end(elf);
    close(fd);
}

struct Pass {
    double seconds = 0;
    size_t named = 0, with_line = 0;
};

Pass run_pass(Symbolizer& s, int pid, const std::vector<Mapping>& maps,
              const std::vector<std::vector<uint64_t>>& stacks, bool batched = false) {
    Pass p;
    auto t0 = Clock::now();
    if (batched) {  // as a report is named (StackNamer): every stack prefetched, one flush
        for (const auto& st : stacks) s.prefetch(pid, maps, st);
        s.flush_prefetched();
    }
    for (const auto& st : stacks) {
        auto frames = s.resolve_stack(pid, maps, st);
        for (const auto& f : frames) {
            p.named += f.function.has_value();
            p.with_line += f.line.has_value();
        }
    }
    p.seconds = seconds_since(t0);
    return p;
}

// A perf map of kLines JIT entries (node --perf-basic-prof's shape), this
// process's own, over anonymous executable memory: how long a fresh
// Symbolizer (that has named one ELF frame already) takes to read it whole
// (parsing, the lookup table), then lookups of one frame per entry from it.
void perf_map_rows(size_t rounds) {
    constexpr size_t kLines = 200000, kEntry = 64;
    void* mem = mmap(nullptr, kLines * kEntry, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) die("mmap: " + std::string(strerror(errno)));
    const uint64_t code = reinterpret_cast<uint64_t>(mem);
    const std::string path = "/tmp/perf-" + std::to_string(getpid()) + ".map";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) die("create " + path + ": " + strerror(errno));
    std::string text;
    char line[160];
    for (size_t i = 0; i < kLines; i++) {
        int n = snprintf(line, sizeof line, "%" PRIx64 " %zx LazyCompile:*handler_%zu /srv/app/routes/r%zu.js:%zu:7\n",
                         code + i * kEntry, kEntry, i, i % 97, i % 1000);
        text.append(line, size_t(n));
    }
    if (write(fd, text.data(), text.size()) != ssize_t(text.size())) die("write " + path);
    close(fd);
    auto maps = read_proc_maps(getpid(), nullptr);
    if (!maps) die("read own maps");
    std::vector<std::vector<uint64_t>> stacks;
    for (size_t i = 0; i < kLines; i += 16) {
        std::vector<uint64_t> st;
        for (size_t j = i; j < std::min(kLines, i + 16); j++) st.push_back(code + j * kEntry + 8);
        stacks.push_back(std::move(st));
    }
    std::vector<double> cold, look;
    size_t named = 0;
    for (size_t r = 0; r < rounds; r++) {
        Symbolizer s;
        // One frame named from this program's ELF file first: memtop has
        // named frames (and started its worker) before it meets a perf map.
        s.resolve(getpid(), *maps, reinterpret_cast<uint64_t>(&median), AddressKind::Exact);
        auto t0 = Clock::now();
        s.refresh_perf_map(getpid());
        cold.push_back(seconds_since(t0));
        t0 = Clock::now();
        named = 0;
        for (const auto& st : stacks)
            for (const auto& f : s.resolve_stack(getpid(), *maps, st)) named += f.function.has_value();
        look.push_back(seconds_since(t0));
    }
    unlink(path.c_str());
    munmap(mem, kLines * kEntry);
    const double c = median(cold), l = median(look);
    printf("\nperf map            %10s %12s %10s\n", "seconds", "per second", "named");
    printf("  read (fresh)      %10.3f %12.0f   lines (%zu lines, %.1f MiB)\n", c, kLines / c, kLines,
           double(text.size()) / (1 << 20));
    printf("  lookups           %10.3f %12.0f %9.1f%%   frames\n", l, kLines / l, 100.0 * named / kLines);
}

// How long each file's unwind table takes to build, in-process and through
// the worker memtop uses.
void cfi_tables(const std::string& program, size_t rounds) {
    // In memtop the tables are built by the confined worker memtop-cfi
    // (cfi_worker.h): the same builder, plus the descriptor handed over and
    // the rows sent back. "no rows" is the worker asked to send none (as
    // for a table that would not fit): the worker's build alone, without
    // the transfer. Medians over the rounds, the three interleaved; the
    // worker's start (fork and confinement) is timed once, apart.
    printf("\nbuild_cfi_table (the files the loader maps for %s)\n", program.c_str());
    printf("  %-44s %6s %7s %8s %11s %10s %10s %7s\n", "file", "FDEs", "rows", "ms", "rows/s", "worker ms",
           "no rows ms", "ratio");
    CfiWorker worker;
    double in_process = 0, in_worker = 0, no_rows = 0;
    bool started = false;
    auto in_worker_ms = [&](const std::string& file, size_t max_rows, CfiBuild& b) {
        int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        auto t0 = Clock::now();
        b = worker.build(fd, file, max_rows);
        const double s = seconds_since(t0);
        ::close(fd);
        return s;
    };
    for (const auto& file : program_files(program, ElfImage::open(program)->interpreter())) {
        std::vector<double> t, tw, tn;
        CfiTable table;
        CfiBuild b;
        try {
            table = build_cfi_table(file);
        } catch (const MemtopError& e) {
            printf("  %-44s %s\n", file.c_str(), e.what());
            continue;
        }
        if (!started) {
            const double s = in_worker_ms(file, SIZE_MAX, b);
            printf("  (worker start and first table, %s: %.2f ms)\n", file.c_str(), s * 1e3);
            started = true;
        }
        for (size_t r = 0; r < rounds; r++) {
            auto t0 = Clock::now();
            table = build_cfi_table(file);
            t.push_back(seconds_since(t0));
            tw.push_back(in_worker_ms(file, SIZE_MAX, b));
            if (!b.error.empty() || b.rows.size() != table.rows.size()) {
                printf("  %-44s worker: %s (%zu rows)\n", file.c_str(), b.error.c_str(), b.rows.size());
                return;
            }
            tn.push_back(in_worker_ms(file, 0, b));
        }
        const double s = median(t), w = median(tw), n = median(tn);
        in_process += s;
        in_worker += w;
        no_rows += n;
        printf("  %-44s %6zu %7zu %8.2f %11.0f %10.2f %10.2f %7.3f\n", file.c_str(), table.fdes, table.rows.size(),
               s * 1e3, double(table.rows.size()) / s, w * 1e3, n * 1e3, w / s);
    }
    printf("  %-44s %6s %7s %8.2f %11s %10.2f %10.2f %7.3f\n", "all files", "", "", in_process * 1e3, "",
           in_worker * 1e3, no_rows * 1e3, in_worker / in_process);
}

}  // namespace

int main(int argc, char** argv) {
    size_t nframes = 20000, rounds = 3, stack_depth = 16;
    bool cfi_only = false;  // only the unwind tables' section
    std::string program = DEEP_SITES_PATH;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--frames" && i + 1 < argc)
            nframes = std::stoul(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc)
            rounds = std::stoul(argv[++i]);
        else if (a == "--stack" && i + 1 < argc)
            stack_depth = std::stoul(argv[++i]);
        else if (a == "--cfi-only")
            cfi_only = true;
        else if (a[0] != '-')
            program = a;
        else
            die("usage: symbolize_bench [--frames N] [--rounds R] [--stack S] [--cfi-only] [PROGRAM]");
    }
    if (program.empty()) die("no program: pass one (deep_sites was not built with this benchmark)");
    if (rounds == 0 || stack_depth == 0) die("--rounds and --stack must be positive");
    elf_version(EV_CURRENT);
    if (cfi_only) {
        cfi_tables(program, rounds);
        return 0;
    }

    Target target(program);
    std::string err;
    auto maps = read_proc_maps(target.pid, &err);
    if (!maps) die(err);

    std::vector<Candidate> funcs;
    std::set<std::pair<uint64_t, uint64_t>> files;
    for (const auto& m : *maps)
        if (m.ino && m.perms.size() > 2 && m.perms[2] == 'x' && files.insert({m.dev, m.ino}).second)
            functions_of(target.pid, m, funcs);
    if (funcs.empty()) die("no functions found in " + program + "'s mappings");
    std::sort(funcs.begin(), funcs.end(), [](const Candidate& a, const Candidate& b) {
        return std::tie(a.module, a.file_offset) < std::tie(b.module, b.file_offset);
    });

    // N distinct return addresses: a point inside a function picked at
    // random (a return address is looked up at address - 1, so 1..size).
    std::mt19937_64 rng(42);
    std::set<uint64_t> picked;
    std::map<std::string, std::vector<uint64_t>> per_module;
    std::vector<uint64_t> addrs;
    for (size_t tries = 0; addrs.size() < nframes && tries < nframes * 20; tries++) {
        const Candidate& c = funcs[rng() % funcs.size()];
        uint64_t a = c.addr + 1 + rng() % (c.size - 1);
        if (picked.insert(a).second) {
            addrs.push_back(a);
            per_module[c.module].push_back(a);
        }
    }
    std::vector<std::vector<uint64_t>> stacks;
    for (size_t i = 0; i < addrs.size(); i += stack_depth)
        stacks.emplace_back(addrs.begin() + i, addrs.begin() + std::min(addrs.size(), i + stack_depth));

    printf(
        "symbolize_bench: %s (pid %d), %zu distinct return addresses in %zu functions of %zu files, "
        "stacks of %zu, median of %zu rounds\n",
        program.c_str(), target.pid, addrs.size(), funcs.size(), files.size(), stack_depth, rounds);
    std::vector<double> cold, warm, batched;
    Pass last_cold, last_warm, last_batched;
    std::unique_ptr<Symbolizer> s;
    for (size_t r = 0; r < rounds; r++) {
        s = std::make_unique<Symbolizer>();  // cold: nothing opened yet
        last_batched = run_pass(*s, target.pid, *maps, stacks, true);
        batched.push_back(last_batched.seconds);
        s = std::make_unique<Symbolizer>();
        last_cold = run_pass(*s, target.pid, *maps, stacks);
        last_warm = run_pass(*s, target.pid, *maps, stacks);
        cold.push_back(last_cold.seconds);
        warm.push_back(last_warm.seconds);
    }
    const double n = double(addrs.size()), c = median(cold), w = median(warm);
    printf("\nresolve_stack       %10s %12s %10s %10s\n", "seconds", "frames/s", "named", "with line");
    printf("  cold (fresh)      %10.3f %12.0f %9.1f%% %9.1f%%\n", c, n / c, 100.0 * last_cold.named / n,
           100.0 * last_cold.with_line / n);
    printf("  warm (2nd pass)   %10.3f %12.0f %9.1f%% %9.1f%%\n", w, n / w, 100.0 * last_warm.named / n,
           100.0 * last_warm.with_line / n);
    const double b = median(batched);
    printf("  cold, batched     %10.3f %12.0f %9.1f%% %9.1f%%   (prefetch + flush, as reports are named)\n", b, n / b,
           100.0 * last_batched.named / n, 100.0 * last_batched.with_line / n);
    printf("  warm/cold speedup %10.2fx   (%zu modules kept)\n", c / w, s->cached_modules());

    // Where the warm time goes: each module's frames alone, warm.
    printf("\nwarm, by module     %8s %12s %10s\n", "frames", "frames/s", "with line");
    for (const auto& [mod, list] : per_module) {
        std::vector<std::vector<uint64_t>> mine;
        for (size_t i = 0; i < list.size(); i += stack_depth)
            mine.emplace_back(list.begin() + i, list.begin() + std::min(list.size(), i + stack_depth));
        Pass p = run_pass(*s, target.pid, *maps, mine);
        printf("  %-60s %8zu %12.0f %9.1f%%\n", mod.c_str(), list.size(), double(list.size()) / p.seconds,
               100.0 * p.with_line / double(list.size()));
    }

    perf_map_rows(rounds);

    cfi_tables(program, rounds);
    return 0;
}
