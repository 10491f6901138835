// Files memtop writes. memtop runs as root and writes where unprivileged
// users can create names too (/tmp): a file is only ever created, never
// opened if something is already there (O_EXCL), never through a symlink
// planted at its name (O_NOFOLLOW), and readable by root alone (0600).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "util/errors.h"
#include "util/unique_fd.h"

namespace memtop {

// Creates `path` for writing, mode exactly `mode` (whatever the umask).
// Fails with EEXIST if any file, directory or symlink is at `path`.
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
