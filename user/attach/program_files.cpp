#include "attach/program_files.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>

namespace memtop {

std::vector<std::string> parse_loader_list(std::string_view text) {
    // "\tlibfoo.so.1 => /usr/lib/libfoo.so.1 (0x...)", "\t/lib64/ld-linux-x86-64.so.2 (0x...)",
    // "\tlinux-vdso.so.1 (0x...)", "\tlibgone.so => not found"
    std::vector<std::string> out;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        auto arrow = line.find("=> ");
        std::string rest = arrow != std::string::npos ? line.substr(arrow + 3) : line;
        size_t b = rest.find_first_not_of(" \t");
        if (b == std::string::npos) continue;
        rest = rest.substr(b);
        auto paren = rest.find(" (0x");
        if (paren == std::string::npos) continue;  // "not found"
        rest = rest.substr(0, paren);
        if (!rest.empty() && rest[0] == '/') out.push_back(rest);
    }
    return out;
}

std::vector<std::string> program_files(const std::string& exe, const std::string& interp,
                                       const std::vector<std::string>* env, const RunAs* as) {
    std::vector<std::string> files{exe};
    // A script's interpreter's files are found when it runs.
    if (interp.empty()) return files;

    // Prepared before fork: the child only execs.
    std::vector<char*> envp;
    if (env) {
        for (const auto& e : *env) envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);
    }
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return files;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 2);
        // No more privilege than the program's, and no way back to it (a
        // setuid loader).
        if (as && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || setgroups(0, nullptr) != 0 ||
                   setresgid(as->gid, as->gid, as->gid) != 0 || setresuid(as->uid, as->uid, as->uid) != 0))
            _exit(126);
        const char* argv[] = {interp.c_str(), "--list", exe.c_str(), nullptr};
        execve(interp.c_str(), const_cast<char* const*>(argv), env ? envp.data() : environ);
        _exit(127);
    }
    close(out[1]);
    std::string text;
    char buf[4096];
    ssize_t n;
    while (pid > 0 && (n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, n);
    close(out[0]);
    if (pid > 0) waitpid(pid, nullptr, 0);
    for (auto& p : parse_loader_list(text))
        if (p != exe) files.push_back(std::move(p));
    return files;
}

}  // namespace memtop
