// How numbers and times read in memtop's text and on its screen.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace memtop {

// RFC 3339 in UTC with seconds: 2026-11-24T02:10:00Z
std::string rfc3339(std::chrono::system_clock::time_point t);
// 1536 -> "1.5 KiB"
std::string human_bytes(int64_t bytes);

}  // namespace memtop
