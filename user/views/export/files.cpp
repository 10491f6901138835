#include "views/export/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "util/errors.h"
#include "util/exclusive_file.h"
#include "util/unique_fd.h"
#include "views/export/folded.h"
#include "views/export/pprof.h"

namespace memtop {

namespace {

std::string dir_of(const std::string& path) {
    std::filesystem::path p(path);
    return p.has_parent_path() ? p.parent_path().string() : ".";
}

}  // namespace

void check_output_path(const char* option, const std::string& path) {
    if (path.empty()) return;
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        throw MemtopError(kExitUsage, std::string(option) + " " + path + ": is a directory");
    // Checked again when it is written (exclusively): saying so now spares
    // a whole tracing run.
    if (lstat(path.c_str(), &st) == 0) throw MemtopError(kExitUsage, exists_message(option, path));
    if (access(dir_of(path).c_str(), W_OK) != 0)
        throw MemtopError(kExitUsage, std::string(option) + " " + path + ": cannot write in " + dir_of(path) + ": " +
                                          std::strerror(errno));
}

namespace {

void write_whole(const char* option, const std::string& path, const std::string& data) {
    write_file_exclusive(option, path, data);
}

}  // namespace

void check_export_files(const ExportFiles& files) {
    check_output_path("--pprof", files.pprof);
    check_output_path("--folded", files.folded);
    check_output_path("--html", files.html);
}

void write_export_files(const Report& r, const ExportFiles& files) {
    // Every Python stack is in the final report; an earlier one of a
    // recording (memtop report --at) has its top ones.
    const auto& python = r.all_python_stacks.empty() ? r.python_stacks : r.all_python_stacks;
    if (!files.pprof.empty()) write_whole("--pprof", files.pprof, gzip(encode_pprof(r, r.all_stacks, python)));
    if (!files.folded.empty()) write_whole("--folded", files.folded, render_folded(r, r.all_stacks, python));
}

void write_html_file(const std::string& path, const HtmlRun& run) {
    if (!path.empty()) write_whole("--html", path, render_html(run));
}

void write_html_file(const std::string& path, const HtmlPage& page) {
    if (!path.empty()) write_whole("--html", path, page.render());
}

}  // namespace memtop
