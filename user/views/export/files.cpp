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

std::vector<ReportStack> python_export_stacks(const Report& r) {
    return python_profile_stacks(r, [](const StackRemainder& rest) {
        ReportStack s;
        s.stats = rest.stats;
        s.stats.stack_id = 0;
        Frame f;
        f.function = "[" + std::to_string(rest.stacks) + " other Python stack" + (rest.stacks == 1 ? "" : "s") + "]";
        s.frames.push_back(std::move(f));
        return s;
    });
}

void write_export_files(const Report& r, const ExportFiles& files) {
    // The final report's top Python stacks and the rest; an earlier one of
    // a recording (memtop report --at) has its top ones.
    const auto python = python_export_stacks(r);
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
