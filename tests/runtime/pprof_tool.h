// `go tool pprof` (Debian's golang-go) run offline by the runtime tests,
// and what they read of its -raw and -top output: the real consumer of
// memtop's pprof profiles, whether a file (--pprof) or an endpoint
// (--listen's /debug/pprof/heap).
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rt {

std::optional<std::string> go_binary();

// `go tool pprof ARGS` offline, with its caches in `dir`; its stdout.
// REQUIREs a zero exit.
std::vector<std::string> pprof(const std::string& go, const std::string& dir, std::vector<std::string> args);

// `-raw`: each sample's values (alloc_objects alloc_space inuse_objects
// inuse_space) summed by the function of its leaf location's innermost line,
// and the labels and mappings seen.
struct Raw {
    std::map<std::string, std::array<long long, 4>> by_leaf;
    std::vector<std::string> labels, mappings;
};
Raw parse_raw(const std::vector<std::string>& lines);

// `-top -nodecount=1000`: flat value per function, in the unit given.
std::map<std::string, long long> parse_top(const std::vector<std::string>& lines);

}  // namespace rt
