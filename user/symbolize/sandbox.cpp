#include "symbolize/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <malloc.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "util/errors.h"

namespace memtop {
namespace {

// nobody: owns nothing, so even a worker that escaped its filter could not
// write anything of root's (Debian's nobody and nogroup).
constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
// The socket becomes this descriptor in the worker; all others are closed.
constexpr int kWorkerSocket = 3;
// Each end's send buffer (see Worker::Worker).
constexpr int kSocketBuffer = 4 << 20;
// A worker that does not say it is confined within this long is broken.
constexpr int kStartTimeoutMs = 10000;

bool write_all(int sock, const char* p, size_t n, int fd) {
    bool fd_sent = fd < 0;
    while (n > 0) {
        struct iovec iov {
            const_cast<char*>(p), n
        };
        struct msghdr msg {};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        if (!fd_sent) {
            std::memset(control, 0, sizeof control);
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
        }
        // MSG_NOSIGNAL: a dead worker must not kill memtop with SIGPIPE.
        ssize_t w = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        fd_sent = true;
        p += w;
        n -= size_t(w);
    }
    return true;
}

// Milliseconds left until `deadline`, for poll(); -1 without one.
int left_ms(std::chrono::steady_clock::time_point deadline, bool has_deadline) {
    if (!has_deadline) return -1;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return ms.count() < 0 ? 0 : static_cast<int>(ms.count());
}

// Reads exactly n bytes (the first read may bring a descriptor).
ReceiveStatus read_all(int sock, char* p, size_t n, UniqueFd* fd, std::chrono::steady_clock::time_point deadline,
                       bool has_deadline) {
    while (n > 0) {
        struct pollfd pfd {
            sock, POLLIN, 0
        };
        int pr = ::poll(&pfd, 1, left_ms(deadline, has_deadline));
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) return ReceiveStatus::TimedOut;
        if (pr < 0) return ReceiveStatus::Closed;
        struct iovec iov {
            p, n
        };
        struct msghdr msg {};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t r = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) return ReceiveStatus::Closed;
        for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            int got = -1;
            std::memcpy(&got, CMSG_DATA(c), sizeof got);
            if (fd && !*fd)
                *fd = UniqueFd(got);
            else
                ::close(got);
        }
        p += r;
        n -= size_t(r);
    }
    return ReceiveStatus::Ok;
}

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

// Empty capability sets (effective, permitted, inheritable), whatever uid.
std::string drop_capabilities() {
    struct __user_cap_header_struct hdr {
        _LINUX_CAPABILITY_VERSION_3, 0
    };
    struct __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capset, &hdr, data) != 0) return errno_text("capset");
    return "";
}

std::string install_seccomp() {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) return "seccomp_init failed";
    // What parsing an ELF file it is handed needs (found by running the
    // worker under strace on the symbolization benchmark and the tests):
    // reading and mapping descriptors, memory, its socket, ending.
    const int allowed[] = {
        SCMP_SYS(read),
        SCMP_SYS(pread64),
        SCMP_SYS(lseek),
        SCMP_SYS(fstat),
        SCMP_SYS(mmap),
        SCMP_SYS(munmap),
        SCMP_SYS(mremap),
        SCMP_SYS(mprotect),
        SCMP_SYS(madvise),
        SCMP_SYS(brk),
        SCMP_SYS(close),
        SCMP_SYS(sendmsg),
        SCMP_SYS(recvmsg),
        SCMP_SYS(poll),
        SCMP_SYS(exit),
        SCMP_SYS(exit_group),
        SCMP_SYS(rt_sigreturn),
        SCMP_SYS(futex),
        SCMP_SYS(getpid),
        SCMP_SYS(gettid),
        // abort() (a failed assertion in a library) raises SIGABRT: let
        // it, so that the worker ends with a clear reason.
        SCMP_SYS(tgkill),
        SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(rt_sigaction),
        // glibc's qsort() (libdw sorts with it) asks sysinfo() how much memory
        // there is before it allocates its buffer.
        SCMP_SYS(sysinfo),
    };
    int rc = 0;
    for (int sc : allowed) rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sc, 0);
#ifdef MEMTOP_SANITIZER_BUILD
    // Only in the ASan+UBSan build (tools/sanitize.sh), never in memtop's
    // own: what the sanitizer runtime in the worker needs to say what it
    // found (its report, on the stderr the worker keeps there) and die with
    // it, rather than be killed by the filter without a word. Its attempts to
    // open /proc/self/maps or start a symbolizer fail below (addresses stay
    // unnamed in a worker's report; the process's own reports name them).
    // UBSan's vptr check (-fsanitize=vptr) asks whether a vtable is
    // readable by write()ing it to a pipe it makes and closes: without that
    // every virtual object in the worker looks invalid to it.
    for (int sc : {SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(sched_yield), SCMP_SYS(pipe), SCMP_SYS(pipe2)})
        rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sc, 0);
    // ASan asks (a null first argument: nothing set) whether it runs on an
    // alternate signal stack at each throw (__asan_handle_no_return).
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sigaltstack), 1, SCMP_A0(SCMP_CMP_EQ, scmp_datum_t{0}));
    // isatty(2), whether to colour the report.
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(TCGETS)));
    for (int sc :
         {SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(execve), SCMP_SYS(ptrace)})
        rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), sc, 0);
#endif
    // glibc's fstat() is newfstatat(fd, "", st, AT_EMPTY_PATH): allowed
    // only so, never with a path.
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                              SCMP_A3(SCMP_CMP_EQ, static_cast<scmp_datum_t>(AT_EMPTY_PATH)));
    // libelf asks a descriptor's flags (fcntl F_GETFD / F_GETFL): only that.
    for (int cmd : {F_GETFD, F_GETFL}) {
        if (!rc)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                                  SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(cmd)));
    }
    if (!rc)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(newfstatat), 1,
                              SCMP_A3(SCMP_CMP_NE, static_cast<scmp_datum_t>(AT_EMPTY_PATH)));
    // Opening or looking at a path fails (libdw looks for separate debug
    // and dwz files itself, realpath()s names): an error libdw copes with,
    // rather than the worker's death.
    for (int sc : {SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(openat2), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
                   SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(statx), SCMP_SYS(access), SCMP_SYS(faccessat),
                   SCMP_SYS(faccessat2), SCMP_SYS(getcwd)})
        rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), sc, 0);
    if (!rc) rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc ? std::string("seccomp: ") + std::strerror(-rc) : "";
}

}  // namespace

bool send_message(int sock, const std::string& payload, int fd) {
    std::string framed(4, '\0');
    const uint32_t n = static_cast<uint32_t>(payload.size());
    std::memcpy(framed.data(), &n, 4);
    framed += payload;
    return write_all(sock, framed.data(), framed.size(), fd);
}

ReceiveStatus receive_message(int sock, std::string& payload, UniqueFd* fd, int timeout_ms) {
    const bool has_deadline = timeout_ms >= 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(has_deadline ? timeout_ms : 0);
    uint32_t n = 0;
    ReceiveStatus s = read_all(sock, reinterpret_cast<char*>(&n), 4, fd, deadline, has_deadline);
    if (s != ReceiveStatus::Ok) return s;
    if (n > (1u << 30)) return ReceiveStatus::Closed;  // not a message of ours
    payload.resize(n);
    return read_all(sock, payload.data(), n, fd, deadline, has_deadline);
}

std::string confine_worker() {
    // Become nobody when root: the capability sets empty themselves.
    // The bounding set goes first (dropping it needs CAP_SETPCAP). Without
    // CAP_SETPCAP (the systemd unit's bounding set does not hold it) it is
    // kept: it only limits what an execve may gain, and no_new_privs below
    // already forbids any gain; every capability set is emptied anyway.
    if (::geteuid() == 0) {
        for (int cap = 0; cap <= 63; ++cap) {
            if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 || errno == EINVAL) continue;
            if (errno == EPERM) break;
            return errno_text("PR_CAPBSET_DROP");
        }
        ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        // A root memtop limited to some capabilities (the systemd unit has
        // no CAP_SETUID/CAP_SETGID) cannot change its identity: the worker
        // then stays uid 0 with every capability set empty below, confined
        // by no_new_privs and the seccomp filter (which allows it to open
        // nothing), rather than not run at all.
        if (::setgroups(0, nullptr) != 0 && errno != EPERM) return errno_text("setgroups");
        if (::setresgid(kNogroup, kNogroup, kNogroup) != 0 && errno != EPERM) return errno_text("setresgid");
        if (::setresuid(kNobody, kNobody, kNobody) != 0 && errno != EPERM) return errno_text("setresuid");
    }
    // Not root (capabilities from the file, or a user namespace): keep the
    // uid, empty every capability set.
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (std::string e = drop_capabilities(); !e.empty()) return e;
    // Not dumpable: no other process of nobody can ptrace the worker and
    // read the descriptors it holds.
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return errno_text("PR_SET_DUMPABLE");
    struct rlimit no_core {
        0, 0
    };
    ::setrlimit(RLIMIT_CORE, &no_core);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno_text("PR_SET_NO_NEW_PRIVS");
    // glibc's malloc sets itself up at its first call, with system calls the
    // filter forbids. Under AddressSanitizer nothing else calls it, and the
    // first release_free_heap() got the worker killed: set up here.
    release_free_heap();
    return install_seccomp();
}

void release_free_heap() {
    ::malloc_trim(0);
}

Worker::Worker(const std::string& name, const std::string& role, const std::function<void(int)>& serve) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        throw MemtopError(kExitFailure, describe(role + ": socketpair", errno));
    UniqueFd mine(sv[0]), theirs(sv[1]);
    // Replies of megabytes (a batch of names, a perf map's entries) pass in
    // a few wakeups rather than one per 200 KiB default buffer: on a busy
    // host each wakeup of the other process can wait for a CPU. For a unix
    // stream socket the sender's buffer is what counts. Best effort: the
    // system's cap (wmem_max) applies unless memtop may force it.
    for (int fd : {sv[0], sv[1]}) {
        const int bytes = kSocketBuffer;
        if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0)
            ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    }
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw MemtopError(kExitFailure, describe(role + ": fork", errno));
    if (pid == 0) {
        // The child of a possibly multi-threaded memtop: only this thread
        // runs here (glibc's malloc is made safe across fork).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (::getppid() != parent) ::_exit(0);
        ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
        // Its own session: a Ctrl-C at memtop's terminal must not end it
        // before the final report is named.
        ::setsid();
        sigset_t all;
        sigfillset(&all);
        ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
        for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
        int null = ::open("/dev/null", O_RDWR);
        if (::dup2(theirs.get(), kWorkerSocket) != kWorkerSocket) ::_exit(2);
#ifdef MEMTOP_SANITIZER_BUILD
        // The sanitizer build's worker keeps memtop's stderr: its reports.
        constexpr int kNullFds = 2;
#else
        constexpr int kNullFds = 3;
#endif
        for (int i = 0; i < kNullFds; ++i) ::dup2(null >= 0 ? null : kWorkerSocket, i);
        if (::syscall(SYS_close_range, kWorkerSocket + 1, ~0u, 0) != 0) {
            for (int i = kWorkerSocket + 1; i < 65536; ++i) ::close(i);
        }
        ::fcntl(kWorkerSocket, F_SETFD, 0);
        std::string err = confine_worker();
        send_message(kWorkerSocket, err.empty() ? std::string("R") : "E" + err);
        if (!err.empty()) ::_exit(2);
        serve(kWorkerSocket);
        ::_exit(0);
    }
    pid_ = pid;
    pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    theirs.reset();
    sock_ = std::move(mine);
    std::string hello;
    ReceiveStatus s = receive_message(sock_.get(), hello, nullptr, kStartTimeoutMs);
    if (s != ReceiveStatus::Ok || hello.empty() || hello[0] != 'R') {
        std::string why = s == ReceiveStatus::Ok && hello.size() > 1 ? hello.substr(1)
                          : s == ReceiveStatus::TimedOut             ? "it did not start"
                                                                     : end_reason();
        kill();
        end_reason();
        throw MemtopError(kExitFailure, role + ": " + why);
    }
}

Worker::~Worker() {
    sock_.reset();  // the worker ends at its socket's end
    if (!reaped_) {
        kill();
        end_reason();
    }
}

void Worker::kill() {
    if (reaped_) return;
    // Through the pidfd: the pid may have been reaped (memtop -f waits for
    // any child) and reused.
    if (pidfd_)
        ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    else
        ::kill(pid_, SIGKILL);
}

std::string Worker::end_reason() {
    if (reaped_) return "ended";
    siginfo_t si{};
    int rc;
    do
        rc = pidfd_ ? ::waitid(static_cast<idtype_t>(3 /* P_PIDFD */), static_cast<id_t>(pidfd_.get()), &si, WEXITED)
                    : ::waitid(P_PID, static_cast<id_t>(pid_), &si, WEXITED);
    while (rc != 0 && errno == EINTR);
    reaped_ = true;
    if (rc != 0) return "ended";  // reaped by memtop -f's wait for any child
    if (si.si_code == CLD_EXITED) return "exited with status " + std::to_string(si.si_status);
    if (si.si_status == SIGSYS) return "was killed by its seccomp filter (a system call it may not make)";
    const char* name = ::strsignal(si.si_status);
    return "was killed by signal " + std::to_string(si.si_status) + (name ? std::string(" (") + name + ")" : "");
}

}  // namespace memtop
