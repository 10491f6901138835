#include "serve/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <cctype>
#include <cstdio>

#include "util/errors.h"

namespace memtop {

BasicAuth BasicAuth::load(const std::string& path) {
    const std::string what = "--listen-auth " + path;
    // Checked once open (fstat): what is checked is what is read.
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw MemtopError(kExitUsage, describe(what, errno));
    struct stat st {};
    std::string text;
    bool ok = fstat(fd, &st) == 0;
    if (ok && S_ISREG(st.st_mode)) {
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0 && text.size() < 65536) text.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    if (!ok) throw MemtopError(kExitUsage, describe(what, errno));
    const mode_t mode = st.st_mode & 07777;
    const uid_t me = getuid();
    if (!S_ISREG(st.st_mode) || (mode != 0600 && mode != 0400) || (st.st_uid != 0 && st.st_uid != me)) {
        char is[128];
        snprintf(is, sizeof is, "it is %s of mode %04o owned by uid %u",
                 S_ISREG(st.st_mode) ? "a file" : "not a regular file", static_cast<unsigned>(mode),
                 static_cast<unsigned>(st.st_uid));
        throw MemtopError(kExitUsage, what + ": must be a regular file of mode 0600 or 0400 owned by root" +
                                          (me ? " or uid " + std::to_string(me) : std::string()) + " (" + is +
                                          "), so that no one else can read or change the password");
    }
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
    auto colon = text.find(':');
    if (colon == 0 || colon == std::string::npos || colon + 1 == text.size() ||
        text.find_first_of("\r\n") != std::string::npos)
        throw MemtopError(kExitUsage, what + ": must hold one line, USER:PASSWORD (neither empty)");
    BasicAuth a;
    a.user_ = text.substr(0, colon);
    // "Basic " and base64 of USER:PASSWORD, as a client sends it.
    std::string header = httplib::make_basic_authentication_header(a.user_, text.substr(colon + 1)).second;
    a.expected_ = header.substr(header.find(' ') + 1);
    return a;
}

bool BasicAuth::accepts(const std::string& authorization) const {
    auto space = authorization.find(' ');
    if (space == std::string::npos) return false;
    std::string scheme = authorization.substr(0, space);
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto token = authorization.find_first_not_of(' ', space);
    if (scheme != "basic" || token == std::string::npos) return false;
    std::string given = authorization.substr(token);
    // Constant time in the credentials: every byte is compared whatever
    // the first difference, so timing does not tell how much was right.
    unsigned char diff = given.size() != expected_.size();
    for (size_t i = 0; i < expected_.size(); i++)
        diff |= static_cast<unsigned char>(expected_[i] ^ (i < given.size() ? given[i] : 0));
    return diff == 0;
}

}  // namespace memtop
