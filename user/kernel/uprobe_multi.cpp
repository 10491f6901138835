#include "kernel/uprobe_multi.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace memtop {

namespace {

// The link_create part of union bpf_attr as Linux 6.6 extended it
// (include/uapi/linux/bpf.h); Debian 12's headers are 6.1.
struct LinkCreateUprobeMulti {
    uint32_t prog_fd;
    uint32_t target_fd;
    uint32_t attach_type;
    uint32_t flags;
    uint64_t path;
    uint64_t offsets;
    uint64_t ref_ctr_offsets;
    uint64_t cookies;
    uint32_t cnt;
    uint32_t multi_flags;
    uint32_t pid;
};
static_assert(sizeof(LinkCreateUprobeMulti) <= sizeof(bpf_attr));

constexpr uint32_t kUprobeMultiReturn = 1;  // BPF_F_UPROBE_MULTI_RETURN

}  // namespace

namespace {

long bpf_call(int cmd, bpf_attr& attr) {
    return syscall(__NR_bpf, cmd, &attr, sizeof attr);
}

// A program that does nothing, of the type uprobe_multi links take, loaded
// for the attach type asked; -errno if the kernel refuses it.
int load_probe_program(uint32_t expected_attach_type) {
    static const bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    static const char license[] = "GPL";
    bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_KPROBE;
    attr.insns = reinterpret_cast<uint64_t>(insns);
    attr.insn_cnt = 2;
    attr.license = reinterpret_cast<uint64_t>(license);
    attr.expected_attach_type = expected_attach_type;
    long fd = bpf_call(BPF_PROG_LOAD, attr);
    return fd < 0 ? -errno : static_cast<int>(fd);
}

// Asks the kernel to make a link of `attach_type` on "/", which is no
// regular file: a kernel that knows the link type gets as far as the path
// and fails with EBADF; one that does not refuses the attach type (EINVAL).
// pid -1 is no process: a kernel whose multi links filter by process (the
// fix of Linux 6.10, backported) refuses it before the path, with EINVAL;
// one that filtered by thread looked it up later (ESRCH or EBADF).
int link_to_root(int prog_fd, uint32_t attach_type, int pid) {
    uint64_t offset = 0;
    bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    auto* lc = reinterpret_cast<LinkCreateUprobeMulti*>(&attr);
    lc->prog_fd = static_cast<uint32_t>(prog_fd);
    lc->attach_type = attach_type;
    lc->path = reinterpret_cast<uint64_t>("/");
    lc->offsets = reinterpret_cast<uint64_t>(&offset);
    lc->cnt = 1;
    lc->pid = static_cast<uint32_t>(pid);
    long fd = bpf_call(BPF_LINK_CREATE, attr);
    if (fd >= 0) {
        close(static_cast<int>(fd));
        return 0;
    }
    return -errno;
}

bool kernel_takes(uint32_t attach_type) {
    int prog = load_probe_program(attach_type);
    if (prog < 0) return false;
    bool known = link_to_root(prog, attach_type, 0) == -EBADF;
    // memtop -p filters its links by process: a kernel that filtered by
    // thread would miss every other thread's calls.
    bool by_process = known && link_to_root(prog, attach_type, -1) == -EINVAL;
    close(prog);
    return by_process;
}

// Asked of the kernel itself, by two links it refuses: a few system calls
// where the kernel's BTF (some megabytes, ~50 ms here to read and parse,
// seconds in an emulated guest) would take longer than the rest of memtop's
// feature checks. Each answer made once.
struct UprobeFeatures {
    bool multi = false, session = false;
};

const UprobeFeatures& uprobe_features() {
    static const UprobeFeatures features = [] {
        UprobeFeatures f;
        f.multi = kernel_takes(kAttachTraceUprobeMulti);
        f.session = f.multi && kernel_takes(kAttachTraceUprobeSession);
        return f;
    }();
    return features;
}

}  // namespace

bool kernel_has_uprobe_multi() {
    return uprobe_features().multi;
}

bool kernel_has_uprobe_session() {
    return uprobe_features().session;
}

int attach_uprobe_multi(int prog_fd, const std::string& path, const std::vector<uint64_t>& offsets, bool retprobe,
                        int pid, bool session, const std::vector<uint64_t>* cookies) {
    bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    auto* lc = reinterpret_cast<LinkCreateUprobeMulti*>(&attr);
    lc->prog_fd = static_cast<uint32_t>(prog_fd);
    lc->attach_type = session ? kAttachTraceUprobeSession : kAttachTraceUprobeMulti;
    lc->path = reinterpret_cast<uint64_t>(path.c_str());
    lc->offsets = reinterpret_cast<uint64_t>(offsets.data());
    lc->cnt = static_cast<uint32_t>(offsets.size());
    if (cookies) lc->cookies = reinterpret_cast<uint64_t>(cookies->data());
    lc->multi_flags = retprobe ? kUprobeMultiReturn : 0;
    lc->pid = pid > 0 ? static_cast<uint32_t>(pid) : 0;
    long fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof attr);
    return fd < 0 ? -errno : static_cast<int>(fd);
}

}  // namespace memtop
