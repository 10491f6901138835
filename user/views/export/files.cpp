#include "views/export/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "util/errors.h"
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
    if (access(dir_of(path).c_str(), W_OK) != 0)
        throw MemtopError(kExitUsage, std::string(option) + " " + path + ": cannot write in " + dir_of(path) + ": " +
                                          std::strerror(errno));
}

namespace {

void write_whole(const char* option, const std::string& path, const std::string& data) {
    std::string tmp = path + ".tmp";
    auto fail = [&](const std::string& what) {
        int err = errno;
        unlink(tmp.c_str());
        throw MemtopError(kExitFailure, describe(std::string(option) + " " + path + ": " + what, err));
    };
    UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) fail("create " + tmp);
    for (size_t done = 0; done < data.size();) {
        ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write");
        done += static_cast<size_t>(n);
    }
    if (fsync(fd.get()) != 0) fail("write");
    fd.reset();
    if (rename(tmp.c_str(), path.c_str()) != 0) fail("rename " + tmp);
}

}  // namespace

void check_export_files(const ExportFiles& files) {
    check_output_path("--pprof", files.pprof);
    check_output_path("--folded", files.folded);
    check_output_path("--html", files.html);
}

void write_export_files(const Report& r, const ExportFiles& files) {
    if (!files.pprof.empty()) write_whole("--pprof", files.pprof, gzip(encode_pprof(r, r.all_stacks)));
    if (!files.folded.empty()) write_whole("--folded", files.folded, render_folded(r, r.all_stacks));
}

void write_html_file(const std::string& path, const HtmlRun& run) {
    if (!path.empty()) write_whole("--html", path, render_html(run));
}

}  // namespace memtop
