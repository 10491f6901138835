// The benchmark's floor: empty BPF programs on exactly the sites memtop
// probes (same placement, same attach path), so what memtop adds above it
// is the cost of its own BPF work. --naive puts every probe on its
// function's first instruction instead, to show what placement saves.
//
//   probe_floor [--naive] PID     attaches, prints "probe_floor: attached N",
//                                 detaches when stdin closes or on SIGTERM.
#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "attach/elf_image.h"
#include "attach/placement.h"
#include "attach/targets.h"
#include "floor.skel.h"
#include "kernel/uprobe_multi.h"
#include "util/errors.h"

using namespace memtop;

int main(int argc, char** argv) {
    bool naive = argc > 2 && std::strcmp(argv[1], "--naive") == 0;
    int pid = argc > 1 ? atoi(argv[argc - 1]) : 0;
    if (pid <= 0) {
        fprintf(stderr, "usage: probe_floor [--naive] PID\n");
        return 2;
    }
    try {
        std::string err;
        auto maps = read_proc_maps(pid, &err);
        if (!maps) throw MemtopError(kExitNoTarget, err);
        AllocatorFinder finder(in_process_symbols());  // a bench tool, run by hand: in-process
        auto files = finder.files_of(pid, *maps);

        floor_bpf* skel = floor_bpf__open();
        bool multi = kernel_has_uprobe_multi();
        if (multi) {
            bpf_program__set_expected_attach_type(skel->progs.floor_entry,
                                                  static_cast<bpf_attach_type>(kAttachTraceUprobeMulti));
            bpf_program__set_expected_attach_type(skel->progs.floor_return,
                                                  static_cast<bpf_attach_type>(kAttachTraceUprobeMulti));
        }
        if (floor_bpf__load(skel)) throw MemtopError(kExitFailure, describe("load floor programs", errno));

        std::vector<int> fds;
        std::vector<bpf_link*> links;
        size_t probes = 0;
        for (const auto& f : files) {
            auto img = ElfImage::open(f.open_path);
            std::vector<uint64_t> entries, returns;
            for (const auto& s : plan_probes(*img)) {
                if (!s.forwards_to.empty()) continue;
                uint64_t off = naive ? *img->file_offset(s.func_vaddr) : s.file_offset;
                entries.push_back(off);
                if (s.has_return) returns.push_back(off);
            }
            for (bool ret : {false, true}) {
                auto& offs = ret ? returns : entries;
                bpf_program* prog = ret ? skel->progs.floor_return : skel->progs.floor_entry;
                if (offs.empty()) continue;
                if (multi) {
                    int fd = attach_uprobe_multi(bpf_program__fd(prog), f.open_path, offs, ret, pid);
                    if (fd < 0) throw MemtopError(kExitAttach, describe("attach floor in " + f.path, fd));
                    fds.push_back(fd);
                } else {
                    for (auto off : offs) {
                        LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
                        bpf_link* l = bpf_program__attach_uprobe_opts(prog, pid, f.open_path.c_str(), off, &opts);
                        if (!l) throw MemtopError(kExitAttach, describe("attach floor in " + f.path, errno));
                        links.push_back(l);
                    }
                }
                probes += offs.size();
            }
        }
        fprintf(stderr, "probe_floor: attached %zu probes%s\n", probes, naive ? " (first instructions)" : "");
        char buf[64];
        while (read(0, buf, sizeof buf) > 0) {
        }
        for (int fd : fds) close(fd);
        for (auto* l : links) bpf_link__destroy(l);
        floor_bpf__destroy(skel);
    } catch (const MemtopError& e) {
        fprintf(stderr, "probe_floor: %s\n", e.what());
        return e.exit_code();
    }
    return 0;
}
