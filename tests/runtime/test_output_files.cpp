// Files memtop writes are only ever created: a symlink planted at the name
// (by anyone who can write /tmp) is refused with one message, before
// anything is traced, and the file it points at is neither written nor
// created. One case per kind of file memtop writes.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "harness.h"

using namespace rt;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

struct Planted {
    std::string dir, victim, absent, link, dangling;
    Planted() {
        char tmpl[] = "/tmp/memtop-planted-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        dir = tmpl;
        victim = dir + "/victim";
        absent = dir + "/would-be-created";
        link = dir + "/out";
        dangling = dir + "/out2";
        std::ofstream(victim) << "precious";
        REQUIRE(symlink(victim.c_str(), link.c_str()) == 0);
        REQUIRE(symlink(absent.c_str(), dangling.c_str()) == 0);
    }
    ~Planted() {
        for (const auto& p : {victim, absent, link, dangling}) unlink(p.c_str());
        rmdir(dir.c_str());
    }
};

// memtop with `option` at a planted symlink (to a file, then dangling):
// status 2, one line naming the option and the path, nothing followed.
void check_refused(const std::vector<std::string>& before, const std::string& option,
                   const std::vector<std::string>& after) {
    Planted p;
    for (const std::string& target : {p.link, p.dangling}) {
        std::vector<std::string> argv = before;
        argv.insert(argv.end(), {option, target});
        argv.insert(argv.end(), after.begin(), after.end());
        Run r = run_memtop(argv);
        INFO(r.diag);
        CHECK(r.exit_code == 2);
        REQUIRE(r.err_lines.size() == 1);
        CHECK(r.err_lines[0] == "memtop: " + option + " " + target +
                                    ": something is already there (memtop only creates new files, never overwrites "
                                    "or follows a symlink): remove it or choose another name");
        CHECK(slurp(p.victim) == "precious");
        CHECK(access(p.absent.c_str(), F_OK) != 0);
        struct stat st {};
        REQUIRE(lstat(target.c_str(), &st) == 0);
        CHECK(S_ISLNK(st.st_mode));
    }
}

}  // namespace

TEST_CASE("memtop's output files refuse a planted symlink: -o, --record, --pprof, --folded, --html", "[cli][files]") {
    const std::vector<std::string> live = {memtop_path(), "--json", "-d", "1"};
    const std::vector<std::string> cmd = {"--", "true"};
    for (const char* option : {"-o", "--record", "--pprof", "--folded", "--html"}) {
        SECTION(option) {
            check_refused(live, option, cmd);
        }
    }
}

TEST_CASE("memtop report's output files refuse a planted symlink: --plot, --html, --pprof", "[cli][files]") {
    // Checked before the recording is read: none is needed.
    const std::vector<std::string> report = {memtop_path(), "report", "/nonexistent/recording.gz"};
    for (const char* option : {"--plot", "--html", "--pprof"}) {
        SECTION(option) {
            check_refused(report, option, {});
        }
    }
}
