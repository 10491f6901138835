#include "kernel/uprobe_multi.h"

#include <bpf/btf.h>
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

// Both answers from one parse of the kernel's BTF (some megabytes: ~10 ms
// of memtop's start-up each time), made once.
struct UprobeFeatures {
    bool multi = false, session = false;
};

const UprobeFeatures& uprobe_features() {
    static const UprobeFeatures features = [] {
        UprobeFeatures f;
        btf* vmlinux = btf__load_vmlinux_btf();
        if (!vmlinux) return f;
        f.multi = btf__find_by_name_kind(vmlinux, "bpf_uprobe_multi_link", BTF_KIND_STRUCT) > 0;
        int id = btf__find_by_name_kind(vmlinux, "bpf_attach_type", BTF_KIND_ENUM);
        if (id > 0) {
            const btf_type* t = btf__type_by_id(vmlinux, id);
            const struct btf_enum* e = btf_enum(t);
            for (int i = 0; i < btf_vlen(t) && !f.session; i++)
                f.session = strcmp(btf__name_by_offset(vmlinux, e[i].name_off), "BPF_TRACE_UPROBE_SESSION") == 0;
        }
        btf__free(vmlinux);
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
