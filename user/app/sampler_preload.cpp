#include "app/sampler_preload.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

extern char** environ;

namespace memtop {

std::string find_sampler_library(const char* kLibrary) {
    std::vector<std::string> candidates;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        std::string dir(self);
        dir = dir.substr(0, dir.rfind('/'));
        candidates.push_back(dir + "/" + kLibrary);
    }
#ifdef MEMTOP_SAMPLER_DIR
    candidates.push_back(std::string(MEMTOP_SAMPLER_DIR) + "/" + kLibrary);
#endif
    for (const auto& c : candidates)
        if (access(c.c_str(), R_OK) == 0) return c;
    return "";
}

std::string preload_refused(const std::string& exe, const FileSymbols* symbols) {
    struct stat st;
    if (stat(exe.c_str(), &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)))
        return "it is setuid or setgid, so its loader ignores LD_PRELOAD";
    if (symbols && !symbols->dynamic) return "it is statically linked, so nothing can be preloaded into it";
    return "";
}

std::vector<std::string> preload_environment(const std::string& lib, uint64_t mean, bool python) {
    std::vector<std::string> env;
    std::string preload = lib;
    for (char** e = environ; e && *e; e++) {
        if (!strncmp(*e, "LD_PRELOAD=", 11)) {
            if ((*e)[11]) preload += ":" + std::string(*e + 11);
        } else if (strncmp(*e, "MEMTOP_SAMPLE_BYTES=", 20) && strncmp(*e, "MEMTOP_SAMPLE_PYTHON=", 21)) {
            env.emplace_back(*e);
        }
    }
    env.push_back("LD_PRELOAD=" + preload);
    env.push_back("MEMTOP_SAMPLE_BYTES=" + std::to_string(mean));
    if (python) env.push_back("MEMTOP_SAMPLE_PYTHON=1");
    return env;
}

std::string python_hook_refused(const std::vector<std::string>& env, const std::vector<std::string>& argv) {
    // CPython's pre-initialization sets the allocators again for
    // PYTHONMALLOC and for the development mode (its debug hooks).
    for (const char* var : {"PYTHONMALLOC=", "PYTHONDEVMODE="})
        for (const auto& e : env)
            if (e.size() > strlen(var) && e.compare(0, strlen(var), var) == 0)
                return e + " is set, so CPython installs allocators of its own";
    for (size_t i = 1; i < argv.size(); i++)
        if (argv[i] == "-Xdev" || (argv[i] == "-X" && i + 1 < argv.size() && argv[i + 1] == "dev"))
            return "-X dev installs CPython's debug allocators";
    return "";
}

}  // namespace memtop
