#include "app/private_allocator.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <vector>

#include "procinfo/proc_maps.h"
#include "util/exclusive_file.h"

namespace memtop {

void rerun_on_private_allocator(int argc, char** argv) {
    char tmpl[] = "/tmp/memtop-libs-XXXXXX";
    if (!mkdtemp(tmpl)) return;
    std::string dir = tmpl;
    auto maps = read_proc_maps(getpid(), nullptr);
    bool copied = false;
    std::set<std::string> seen;
    for (const auto& m : maps ? *maps : std::vector<Mapping>{}) {
        std::string base = std::filesystem::path(m.path).filename().string();
        // The loader looks libraries up by soname: libstdc++.so.6, libc.so.6.
        std::string soname = base.rfind("libstdc++.so.6", 0) == 0 ? "libstdc++.so.6" : base == "libc.so.6" ? base : "";
        if (soname.empty() || !seen.insert(soname).second) continue;
        // The directory is root's alone, but a copy is still never written
        // through a name that exists (user/util/exclusive_file.h).
        copied = copy_file_exclusive(m.path, dir + "/" + soname, nullptr) || copied;
    }
    std::error_code ec;
    if (!copied) {
        std::filesystem::remove_all(dir, ec);
        return;
    }
    std::vector<std::string> args{argv[0], std::string(kPrivateLibsOption) + "=" + dir};
    const char* old = getenv("LD_LIBRARY_PATH");
    if (old) args.push_back(std::string(kSavedLibraryPathOption) + "=" + old);
    for (int i = 1; i < argc; i++) args.push_back(argv[i]);
    setenv("LD_LIBRARY_PATH", old ? (dir + ":" + old).c_str() : dir.c_str(), 1);
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execv("/proc/self/exe", cargs.data());
    // exec failed: carry on as we are
    if (old)
        setenv("LD_LIBRARY_PATH", old, 1);
    else
        unsetenv("LD_LIBRARY_PATH");
    std::filesystem::remove_all(dir, ec);
}

void finish_private_allocator(const std::string& dir, const std::optional<std::string>& saved_library_path) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (saved_library_path)
        setenv("LD_LIBRARY_PATH", saved_library_path->c_str(), 1);
    else
        unsetenv("LD_LIBRARY_PATH");
}

}  // namespace memtop
