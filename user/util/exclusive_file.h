// Files memtop writes. memtop runs as root and writes where unprivileged
// users can create names too (/tmp): a file is only ever created, never
// opened if something is already there (O_EXCL), never through a symlink
// planted at its name (O_NOFOLLOW), and readable by root alone (0600). The
// one exception: an output named at an existing character device
// (-o /dev/null), which no unprivileged user can create.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "util/errors.h"
#include "util/unique_fd.h"

namespace memtop {

// An existing character device at `path` (not through a symlink): /dev/null
// and terminals are written to as they are. Only root can make device
// nodes, so no unprivileged user can plant one where memtop writes.
inline UniqueFd open_existing_device(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) {
        errno = EEXIST;
        return UniqueFd();
    }
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd && (::fstat(fd.get(), &st) != 0 || !S_ISCHR(st.st_mode))) {
        errno = EEXIST;
        return UniqueFd();
    }
    return fd;
}

// Creates `path` for writing, mode exactly `mode` (whatever the umask).
// Fails with EEXIST if any file, directory, symlink or FIFO is at `path`.
inline UniqueFd create_exclusive(const std::string& path, mode_t mode = 0600) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (fd && ::fchmod(fd.get(), mode) != 0) {
        int err = errno;
        ::unlink(path.c_str());
        errno = err;
        return UniqueFd();
    }
    return fd;
}

// An output the user named (-o, --pprof, ...): a new file as
// create_exclusive makes it, or a character device already there
// (-o /dev/null). Never removed on failure: it may be a device.
inline UniqueFd open_output(const std::string& path, mode_t mode = 0600) {
    UniqueFd fd = create_exclusive(path, mode);
    if (!fd && errno == EEXIST) return open_existing_device(path);
    return fd;
}

// What to tell a user whose output path is taken: memtop never replaces,
// truncates or follows what is there (a symlink planted in /tmp would make
// a root memtop write where its planter chose).
inline std::string exists_message(const std::string& option, const std::string& path) {
    return option + " " + path + ": something is already there (memtop only creates new files, " +
           "never overwrites or follows a symlink): remove it or choose another name";
}

// A new file `path`, opened for writing (create_exclusive), as a stdio
// stream; throws MemtopError (kExitUsage) saying why not.
inline FILE* create_exclusive_stream(const std::string& option, const std::string& path, mode_t mode = 0600) {
    UniqueFd fd = open_output(path, mode);
    if (!fd) {
        if (errno == EEXIST) throw MemtopError(kExitUsage, exists_message(option, path));
        throw MemtopError(kExitUsage, describe(option + " " + path, errno));
    }
    FILE* f = ::fdopen(fd.get(), "w");
    if (!f) throw MemtopError(kExitFailure, describe(option + " " + path, errno));
    fd.release();
    return f;
}

// Writes `data` as the new file `path`, whole or not at all: written into
// an unnamed file in the same directory (O_TMPFILE) that is then linked at
// `path`, which fails if anything (a file, a symlink) is there. Where the
// filesystem has no O_TMPFILE, `path` is created exclusively and removed
// again on failure. Throws MemtopError naming `option`.
inline void write_file_exclusive(const std::string& option, const std::string& path, const std::string& data,
                                 mode_t mode = 0600) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (UniqueFd dev = open_existing_device(path)) {
        for (size_t done = 0; done < data.size();) {
            ssize_t n = ::write(dev.get(), data.data() + done, data.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw MemtopError(kExitFailure, describe(option + " " + path + ": write", errno));
            done += static_cast<size_t>(n);
        }
        return;
    }
    bool named = false;
    UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode));
    if (!fd) {
        fd = create_exclusive(path, mode);
        named = true;
        if (!fd && errno == EEXIST) throw MemtopError(kExitUsage, exists_message(option, path));
        if (!fd) throw MemtopError(kExitFailure, describe(option + " " + path, errno));
    }
    auto fail = [&](const std::string& what) {
        const int err = errno;
        if (named) ::unlink(path.c_str());
        if (err == EEXIST) throw MemtopError(kExitUsage, exists_message(option, path));
        throw MemtopError(kExitFailure, describe(option + " " + path + ": " + what, err));
    };
    if (::fchmod(fd.get(), mode) != 0) fail("chmod");
    for (size_t done = 0; done < data.size();) {
        ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write");
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) fail("write");
    if (!named) {
        // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc link
        // does not. The new name is never followed if it is a symlink.
        const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
        if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0) fail("create");
    }
}

// Copies `from` into a new file `to` (create_exclusive). On failure `to`
// does not exist (unless it did before) and `error`, if given, says e.g.
// "copy /usr/lib/x/libc.so.6 to /tmp/d/libc.so.6: File exists".
inline bool copy_file_exclusive(const std::string& from, const std::string& to, std::string* error,
                                mode_t mode = 0600) {
    auto fail = [&](int err, bool created) {
        if (created) ::unlink(to.c_str());
        if (error) *error = describe("copy " + from + " to " + to, err);
        return false;
    };
    UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return fail(errno, false);
    UniqueFd out = create_exclusive(to, mode);
    if (!out) return fail(errno, false);
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(errno, true);
        if (n == 0) break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = ::write(out.get(), buf + done, static_cast<size_t>(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return fail(errno, true);
            done += w;
        }
    }
    if (::close(out.release()) != 0) return fail(errno, true);
    return true;
}

}  // namespace memtop
