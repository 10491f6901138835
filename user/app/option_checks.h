// Checks on command-line values whose failures read as memtop's own one-line
// messages ("memtop: -d: must be ... (got 0)"), not CLI11's range texts.
#pragma once

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace memtop {

// The live screen's own floor for its interval keys, and below it reports
// are mostly the cost of making them.
inline constexpr double kMinInterval = 0.1;

// Seconds: a finite number of at least `min` (which says what it is for).
inline CLI::Validator seconds_at_least(double min, const std::string& what) {
    return CLI::Validator(
        [min, what](std::string& v) -> std::string {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end || !std::isfinite(d) || d <= 0)
                return "must be a positive number of seconds (got " + (v.empty() ? "''" : v) + ")";
            if (d < min) return what + " (got " + v + ")";
            return {};
        },
        "SECONDS");
}

// Seconds, 0 allowed (an age: 0 is every block).
inline CLI::Validator seconds_or_zero() {
    return CLI::Validator(
        [](std::string& v) -> std::string {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end || !std::isfinite(d) || d < 0)
                return "must be 0 or a positive number of seconds (got " + (v.empty() ? "''" : v) + ")";
            return {};
        },
        "SECONDS");
}

inline CLI::Validator positive_seconds() {
    return seconds_at_least(0, "");
}

// A count: a whole number from 1 on.
inline CLI::Validator positive_count() {
    return CLI::Validator(
        [](std::string& v) -> std::string {
            char* end = nullptr;
            errno = 0;
            unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            if (v.empty() || *end || v[0] == '-' || n == 0 || errno == ERANGE)
                return "must be a whole number from 1 on (got " + (v.empty() ? "''" : v) + ")";
            return {};
        },
        "N");
}

// Bytes: a whole number from 0 on.
inline CLI::Validator byte_count() {
    return CLI::Validator(
        [](std::string& v) -> std::string {
            char* end = nullptr;
            errno = 0;
            std::strtoull(v.c_str(), &end, 10);
            if (v.empty() || *end || v[0] == '-' || errno == ERANGE)
                return "must be a whole number of bytes (got " + (v.empty() ? "''" : v) + ")";
            return {};
        },
        "BYTES");
}

// A file or other name that cannot be empty.
inline CLI::Validator not_empty(const std::string& what) {
    return CLI::Validator(
        [what](std::string& v) -> std::string { return v.empty() ? "needs " + what + " (got '')" : std::string{}; },
        "");
}

}  // namespace memtop
