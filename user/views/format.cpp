#include "views/format.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace memtop {

std::string rfc3339(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm;
    if (!gmtime_r(&tt, &tm)) return "?";  // a year past what struct tm holds (a corrupt recording)
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string human_bytes(int64_t bytes) {
    static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    // The magnitude as unsigned: -INT64_MIN overflows (a corrupt recording
    // can hold it).
    const uint64_t mag = bytes < 0 ? 0 - static_cast<uint64_t>(bytes) : static_cast<uint64_t>(bytes);
    double v = static_cast<double>(mag);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    char buf[32];
    if (u == 0)
        snprintf(buf, sizeof buf, "%s%" PRIu64 " B", bytes < 0 ? "-" : "", mag);
    else
        snprintf(buf, sizeof buf, "%s%.1f %s", bytes < 0 ? "-" : "", v, units[u]);
    return buf;
}

}  // namespace memtop
