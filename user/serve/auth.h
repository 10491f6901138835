// --listen-auth FILE: HTTP basic authentication for --listen. The file
// holds one line, USER:PASSWORD; it is refused unless only its owner can
// read it (mode 0600 or 0400) and that owner is root or the user memtop
// runs as, so the password is neither on the command line (ps shows it)
// nor readable by others.
#pragma once

#include <string>

namespace memtop {

class BasicAuth {
public:
    // Reads and checks FILE. Throws MemtopError(kExitUsage) with one message
    // naming the file and what is wrong with it.
    static BasicAuth load(const std::string& path);

    // Whether an Authorization header's value carries these credentials
    // (scheme "Basic", any case). Compared in constant time.
    bool accepts(const std::string& authorization) const;

    const std::string& user() const { return user_; }

private:
    std::string user_;
    std::string expected_;  // base64 of USER:PASSWORD, as the header carries it
};

}  // namespace memtop
