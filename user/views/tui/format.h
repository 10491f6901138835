// Text the live screen draws, without ncurses: the header's pieces, the
// interval steps of + and -, frames, and charts of plain characters. Pure;
// tests/unit/tui/test_format.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/frame.h"
#include "model/host.h"
#include "model/report.h"
#include "views/format.h"

namespace memtop::tui {

// "Mem 23.5 GiB total, 1.1 GiB used, 22.4 GiB available   Swap 0 B of 2.0 GiB used"
std::string host_memory_text(const std::optional<MemInfo>& m);
// "memtop 0.4% CPU, 28.1 MiB resident, 17 probes"
std::string self_text(const SelfStats& s);
// "lost: nothing", or what was not recorded, by reason: "lost: 3 events, 12 allocs (map full)"
std::string lost_text(const LostCounters& l);
// 0.5 -> "0.5s", 2 -> "2s", 90 -> "1m30s"
std::string interval_text(double seconds);
// The interval `+` (dir > 0) or `-` (dir < 0) moves to: 0.5 1 2 3 5 10 15 30 60 s.
double next_interval(double seconds, int dir);

// One frame on one line: "leak_malloc+0x1a  c_sites.c:37  (c_sites_fp)",
// "0x7f3a1c2b4d10  (libc.so.6)" when the function is unknown.
std::string frame_text(const Frame& f);
// "(inlined) helper  util.h:12"
std::string inlined_text(const InlinedFrame& f);

// A bar chart in `height` lines of `width` characters: one column per value,
// the newest rightmost, scaled from 0 to the largest value shown. A cell is
// '#' when full, '.' when at least half full; an unknown value is blank, a
// value above zero shows at least a '.'. Fewer values than `width` leave the
// left side blank; more keep only the newest.
std::vector<std::string> bar_chart(const std::vector<std::optional<int64_t>>& values, int width, int height);

}  // namespace memtop::tui
