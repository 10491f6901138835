#include "pprof_tool.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <regex>

#include "harness.h"

using namespace std::chrono_literals;

namespace rt {

std::optional<std::string> go_binary() {
    for (const char* p : {"/usr/bin/go", "/usr/lib/go/bin/go"})
        if (access(p, X_OK) == 0) return p;
    return std::nullopt;
}

std::vector<std::string> pprof(const std::string& go, const std::string& dir, std::vector<std::string> args) {
    std::vector<std::string> argv = {"env",
                                     "HOME=" + dir,
                                     "GOCACHE=" + dir + "/cache",
                                     "GOPATH=" + dir + "/gopath",
                                     "GOTOOLCHAIN=local",
                                     "GOPROXY=off",
                                     "PPROF_TMPDIR=" + dir,
                                     go,
                                     "tool",
                                     "pprof"};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c;
    std::string error;
    REQUIRE(spawn(c, argv, false, &error));
    REQUIRE(wait_exit({&c}, c, 120s));  // the first run builds nothing, but go starts slowly on a busy host
    INFO(c.describe(20));
    REQUIRE(c.exit_code() == 0);
    return c.out_lines;
}

Raw parse_raw(const std::vector<std::string>& lines) {
    Raw raw;
    std::map<std::string, std::string> leaf_fn;  // location id -> function of its first line
    std::vector<std::pair<std::array<long long, 4>, std::string>> samples;
    enum { Head, Samples, Locations, Mappings } part = Head;
    std::regex sample_re(R"(^\s*(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+):\s+(\d+))");
    std::regex loc_re(R"(^\s*(\d+):\s+0x[0-9a-f]+\s+(?:M=\d+\s+)?(\S+))");
    std::string last_loc;
    for (const auto& l : lines) {
        if (l.rfind("Samples:", 0) == 0)
            part = Samples;
        else if (l.rfind("Locations", 0) == 0)
            part = Locations;
        else if (l.rfind("Mappings", 0) == 0)
            part = Mappings;
        std::smatch m;
        if (part == Samples && std::regex_search(l, m, sample_re)) {
            samples.push_back({{std::stoll(m[1]), std::stoll(m[2]), std::stoll(m[3]), std::stoll(m[4])}, m[5]});
        } else if (part == Samples && l.find(":[") != std::string::npos) {
            raw.labels.push_back(l);
        } else if (part == Locations && std::regex_search(l, m, loc_re)) {
            leaf_fn[m[1]] = m[2];
        } else if (part == Mappings && l.find("/") != std::string::npos) {
            raw.mappings.push_back(l);
        }
    }
    for (const auto& [v, loc] : samples) {
        auto& sum = raw.by_leaf[leaf_fn[loc]];
        for (int i = 0; i < 4; i++) sum[i] += v[i];
    }
    return raw;
}

std::map<std::string, long long> parse_top(const std::vector<std::string>& lines) {
    std::map<std::string, long long> flat;
    std::regex row(R"(^\s*(-?\d+)B?\s+\S+%\s+\S+%\s+(-?\d+)B?\s+\S+%\s+(\S+))");
    for (const auto& l : lines) {
        std::smatch m;
        if (std::regex_search(l, m, row)) flat[m[3]] += std::stoll(m[1]);
    }
    return flat;
}

}  // namespace rt
