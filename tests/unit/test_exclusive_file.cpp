// user/util/exclusive_file.h: what memtop writes is created, never reached
// through a symlink someone planted at its name.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "util/exclusive_file.h"

using namespace memtop;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/memtop-test-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

}  // namespace

TEST_CASE("copy_file_exclusive does not follow a planted symlink", "[util][files]") {
    TempDir d;
    const std::string src = d.path + "/src", victim = d.path + "/victim", dst = d.path + "/dst";
    std::ofstream(src) << "library bytes";
    std::ofstream(victim) << "precious";
    REQUIRE(symlink(victim.c_str(), dst.c_str()) == 0);

    std::string error;
    CHECK_FALSE(copy_file_exclusive(src, dst, &error));
    CHECK(error == "copy " + src + " to " + dst + ": File exists");
    CHECK(slurp(victim) == "precious");  // not written through the link
    struct stat st {};
    REQUIRE(lstat(dst.c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));  // and the link itself left as it was

    // A dangling link (the attacker's file to be) is not created either.
    const std::string dangling = d.path + "/dangling", target = d.path + "/would-be-created";
    REQUIRE(symlink(target.c_str(), dangling.c_str()) == 0);
    CHECK_FALSE(copy_file_exclusive(src, dangling, nullptr));
    CHECK(access(target.c_str(), F_OK) != 0);
}

TEST_CASE("copy_file_exclusive creates a copy only root can read, whatever the umask", "[util][files]") {
    TempDir d;
    const std::string src = d.path + "/src", dst = d.path + "/dst";
    std::ofstream(src) << std::string(200000, 'x') << "end";
    mode_t old = umask(0);
    bool ok = copy_file_exclusive(src, dst, nullptr);
    umask(old);
    REQUIRE(ok);
    CHECK(slurp(dst) == slurp(src));
    struct stat st {};
    REQUIRE(stat(dst.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    // A second copy to the same name is refused, the first left whole.
    CHECK_FALSE(copy_file_exclusive(src, dst, nullptr));
    CHECK(slurp(dst) == slurp(src));
    // A source that cannot be read leaves nothing behind.
    std::string error;
    CHECK_FALSE(copy_file_exclusive(d.path + "/missing", d.path + "/out", &error));
    CHECK(error == "copy " + d.path + "/missing to " + d.path + "/out: No such file or directory");
    CHECK(access((d.path + "/out").c_str(), F_OK) != 0);
}

TEST_CASE("write_file_exclusive writes a new file 0600, whole", "[util][files]") {
    TempDir d;
    const std::string out = d.path + "/report.html";
    const mode_t old = umask(0);
    write_file_exclusive("--html", out, "page");
    umask(old);
    CHECK(slurp(out) == "page");
    struct stat st {};
    REQUIRE(lstat(out.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("write_file_exclusive refuses a planted symlink and an existing file, following neither", "[util][files]") {
    TempDir d;
    const std::string victim = d.path + "/victim", out = d.path + "/heap.pb.gz", dangling = d.path + "/new.svg";
    std::ofstream(victim) << "precious";
    REQUIRE(symlink(victim.c_str(), out.c_str()) == 0);
    REQUIRE(symlink((d.path + "/created-through-link").c_str(), dangling.c_str()) == 0);
    const std::string msg =
        ": something is already there (memtop only creates new files, never overwrites or "
        "follows a symlink): remove it or choose another name";
    CHECK_THROWS_WITH(write_file_exclusive("--pprof", out, "profile"), "--pprof " + out + msg);
    CHECK_THROWS_WITH(write_file_exclusive("--plot", dangling, "svg"), "--plot " + dangling + msg);
    CHECK_THROWS_WITH(write_file_exclusive("--html", victim, "page"), "--html " + victim + msg);
    CHECK(slurp(victim) == "precious");
    CHECK(access((d.path + "/created-through-link").c_str(), F_OK) != 0);
    struct stat st {};
    REQUIRE(lstat(out.c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
}

TEST_CASE("create_exclusive_stream refuses a planted symlink (-o, --record)", "[util][files]") {
    TempDir d;
    const std::string victim = d.path + "/victim", out = d.path + "/rec.gz";
    std::ofstream(victim) << "precious";
    REQUIRE(symlink(victim.c_str(), out.c_str()) == 0);
    CHECK_THROWS_WITH(create_exclusive_stream("--record", out),
                      "--record " + out +
                          ": something is already there (memtop only creates new files, never overwrites or "
                          "follows a symlink): remove it or choose another name");
    CHECK(slurp(victim) == "precious");
    const std::string fresh = d.path + "/fresh";
    FILE* f = create_exclusive_stream("-o", fresh);
    REQUIRE(f);
    fputs("report", f);
    fclose(f);
    CHECK(slurp(fresh) == "report");
    struct stat st {};
    REQUIRE(stat(fresh.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("an output at a character device is written as it is; a planted FIFO is refused", "[util][files]") {
    // -o /dev/null: devices cannot be planted by an unprivileged user.
    FILE* f = create_exclusive_stream("-o", "/dev/null");
    REQUIRE(f);
    CHECK(fputs("report", f) >= 0);
    CHECK(fclose(f) == 0);
    write_file_exclusive("--pprof", "/dev/null", "profile");
    struct stat st {};
    REQUIRE(lstat("/dev/null", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));

    // A symlink to a device is still a symlink; a FIFO is not a device.
    TempDir d;
    const std::string link = d.path + "/null-link", fifo = d.path + "/fifo";
    REQUIRE(symlink("/dev/null", link.c_str()) == 0);
    REQUIRE(mkfifo(fifo.c_str(), 0666) == 0);
    const std::string msg =
        ": something is already there (memtop only creates new files, never overwrites or "
        "follows a symlink): remove it or choose another name";
    CHECK_THROWS_WITH(create_exclusive_stream("-o", link), "-o " + link + msg);
    CHECK_THROWS_WITH(create_exclusive_stream("-o", fifo), "-o " + fifo + msg);
    CHECK_THROWS_WITH(write_file_exclusive("--html", fifo, "page"), "--html " + fifo + msg);
    // copy_file_exclusive (library copies) takes new files only.
    std::string error;
    CHECK_FALSE(copy_file_exclusive("/proc/self/status", "/dev/null", &error));
}
