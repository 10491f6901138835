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
// Never throws: a program the loader cannot list still has itself.
std::vector<std::string> program_files(const std::string& exe, const std::string& interp,
                                       const std::vector<std::string>* env = nullptr);

}  // namespace memtop
