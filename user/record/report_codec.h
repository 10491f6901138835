// A Report as JSON and back, whole: every field the text, JSON, pprof and
// folded views read, so a recording shows what the live run showed. Not the
// user-facing JSON (views/json.cpp): this one is memtop's own file format,
// versioned by the recording it is in.
#pragma once

#include <nlohmann/json.hpp>

#include "model/report.h"

namespace memtop {

nlohmann::json encode_report(const Report& r);
// Throws std::runtime_error naming what is missing or malformed.
Report decode_report(const nlohmann::json& j);
// A report's processes only (its "processes"), checked as decode_report
// checks them: what the HTML chart takes of a report it does not show.
std::vector<ProcessStats> decode_processes(const nlohmann::json& j);

}  // namespace memtop
