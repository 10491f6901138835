// The files a program will map at start: itself, its dynamic loader and the
// libraries the loader resolves for it. Asked of the program's own loader
// (`ld.so --list`, what ldd runs), so the search follows its rules exactly:
// RPATH/RUNPATH, LD_LIBRARY_PATH, ld.so.cache.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace memtop {

// Paths named by the loader's --list output. Pure.
std::vector<std::string> parse_loader_list(std::string_view text);

// `exe` first, then its loader and libraries; only `exe` for a static file.
// `interp`: exe's PT_INTERP, as memtop-cfi read it (FileSymbols: the file is
// not parsed here); "" for a static program, a script, or a file that
// could not be read: then only `exe`.
// `env` ("NAME=value" strings), when given, is the environment the program
// runs with: LD_PRELOAD and LD_LIBRARY_PATH there decide what it loads.
// `as`, when given, is whose the program is (the uid and gid the loader
// runs under): the loader is the program's own choice (PT_INTERP), which a
// process memtop follows (-f) may have made, so it must not run with more
// privilege than that process.
// Never throws: a program the loader cannot list still has itself.
struct RunAs {
    unsigned uid = 0, gid = 0;
};
std::vector<std::string> program_files(const std::string& exe, const std::string& interp,
                                       const std::vector<std::string>* env = nullptr, const RunAs* as = nullptr);

}  // namespace memtop
