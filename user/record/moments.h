// Moments of a recording (`memtop report FILE --at TIME`, `--peak [PID]`,
// `--diff-from TIME`): when it started, which report stands for a moment,
// and when a process's heap was highest. Pure: reads a Recording only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/report.h"
#include "record/recording.h"

namespace memtop {

// The recording's start, ns since the epoch: the header's start_ns (written
// since this was added), else its whole-second RFC 3339 start, else the
// first record's time. 0 when none of them is there.
int64_t recording_start_ns(const Recording& rec);
// Time of the recording's last record (sample or report), ns; 0 if none.
int64_t recording_end_ns(const Recording& rec);

// TIME as the user gives it: seconds since the recording's start ("12",
// "2.5") or an RFC 3339 time ("2026-12-06T07:00:01.25Z", "...+01:00").
// Returns ns since the epoch. Throws MemtopError (usage) naming `option`.
int64_t parse_moment(const std::string& text, int64_t start_ns, const char* option);

// "+3.20 s" after start_ns.
std::string since_start(int64_t t_ns, int64_t start_ns);

// A report chosen from a recording.
struct ChosenReport {
    Report report;
    int64_t time_ns = 0;
    size_t number = 0;   // 1-based among the file's report records
    size_t reports = 0;  // report records in the file
};

// The last report at or before `t_ns` (the last of all when t_ns is
// nullopt) that decodes; a later one that does not is skipped, its reason
// appended to rec.problem. nullopt when there is none.
std::optional<ChosenReport> report_at_or_before(Recording& rec, std::optional<int64_t> t_ns);

// The highest heap a process reached in the recording: the largest
// heap_bytes among the samples and the reports' processes, and how long it
// lasted the first time: from the first observation at that value
// (time_ns) to the last one before it changed (until_ns). Reports come
// only every -d seconds, so a peak shorter than that is in none of them:
// report_ns is the time of the report that saw that process's heap
// highest (the earliest of equals; the peak itself when a report was made
// while it lasted), 0 when no report holds its heap. --peak shows that
// report. With `pid`, that process's; without, the process whose heap went
// highest. nullopt when the recording holds no heap number of it.
struct HeapPeak {
    uint32_t pid = 0;
    int64_t heap_bytes = 0;
    int64_t time_ns = 0;
    int64_t until_ns = 0;
    int64_t report_ns = 0;
};
// PeakOf::Rss: the same of resident memory (rss_bytes of the samples, file
// + anon + shmem of the reports); PeakOf::Python: of the Python domain
// (py_bytes of the samples, from format version 3, and of the reports);
// heap_bytes then holds those bytes.
enum class PeakOf { Heap, Rss, Python };
std::optional<HeapPeak> heap_peak(const Recording& rec, std::optional<uint32_t> pid, PeakOf of = PeakOf::Heap);

}  // namespace memtop
