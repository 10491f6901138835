// memtop's recording file (--record FILE, read by `memtop report FILE`):
// one gzip stream of JSON lines, flushed (Z_SYNC_FLUSH) after each line, so
// that a run killed at any moment leaves a file that reads up to its last
// whole record. Format: docs/recording.md.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace memtop {

// 2: samples and reports' stacks as deltas (record/deltas.h). 3: samples
// carry each process's Python domain (py_bytes, ...) when it has one.
// Files of versions 1 and 2 read as before (no Python domain over time).
inline constexpr int kRecordingVersion = 3;

class RecordingWriter {
public:
    // Creates `path` and writes the header record (type "memtop-recording",
    // version, then `meta`). Throws MemtopError naming the file.
    // Always a new file: never over an existing one or through a symlink,
    // mode 0600 (util/exclusive_file.h); errors name the screen's save key
    // when saved_from_screen, else --record.
    RecordingWriter(const std::string& path, const nlohmann::json& meta, bool saved_from_screen = false);
    ~RecordingWriter();
    RecordingWriter(const RecordingWriter&) = delete;
    RecordingWriter& operator=(const RecordingWriter&) = delete;

    // One record, whole on disk (as far as the kernel has it) on return.
    // Throws MemtopError naming the file.
    void write(const nlohmann::json& record);
    // Ends the gzip stream (a file without its end still reads).
    void close();

private:
    void deflate_out(int flush);
    std::string path_;
    FILE* file_ = nullptr;
    z_stream z_{};
    bool open_ = false;
};

// One process's numbers at one observation (a sample, or a report's
// processes), as `memtop report` keeps them: the fields the moments, the
// plot and the HTML chart read, as plain numbers. An hour of the system
// view holds hundreds of thousands of these; kept as JSON objects (a map
// node per field) they were most of the reader's memory. `has` says which
// fields the record held.
struct ProcPoint {
    enum Field : uint16_t {
        kHeap = 1 << 0,
        kHeapPeak = 1 << 1,
        kAllocs = 1 << 2,
        kFrees = 1 << 3,
        kRssFile = 1 << 4,  // a report's "rss" object: file, anon, shmem, swap
        kRssAnon = 1 << 5,
        kRssShmem = 1 << 6,
        kRssSwap = 1 << 7,
        kRssBytes = 1 << 8,  // a sample's rss_bytes (file + anon + shmem) and its peak
        kRssPeak = 1 << 9,
        kMapped = 1 << 10,
        kMappedPeak = 1 << 11,
        kComm = 1 << 12,
        kMappedKnown = 1 << 13,
        kPy = 1 << 14,  // the Python domain: py_bytes (samples and reports), py_peak_bytes (samples)
        kPyPeak = 1 << 15,
    };
    uint32_t pid = 0, epoch = 0;
    uint32_t comm = 0;  // its index in Recording::comms
    uint16_t has = 0;
    bool heap_traced = true;  // a report's "heap_traced" (absent: true)
    bool mapped_known = false;
    int64_t heap_bytes = 0, heap_peak_bytes = 0, allocs_total = 0, frees_total = 0;
    int64_t rss_file = 0, rss_anon = 0, rss_shmem = 0, rss_swap = 0, rss_bytes = 0, rss_peak_bytes = 0;
    int64_t mapped_bytes = 0, mapped_peak_bytes = 0;
    int64_t py_bytes = 0, py_peak_bytes = 0;

    bool holds(uint16_t fields) const { return (has & fields) == fields; }
    bool operator==(const ProcPoint&) const = default;
};

// A recording as `memtop report` reads it: streamed, one record at a time,
// keeping what the moments, the plot and the HTML chart need and never the
// file. Samples and reports' processes are kept as points where a
// process's numbers changed (a version 2 sample lists only those), each
// preceded by a "hold" point (the old numbers at the previous observation)
// so that a line or a plateau is where it was: points[i] are record i's.
// A record read from a file keeps its other fields only (a report its
// "time_ns" and "final": {"type": "report", "report": {"time_ns", ...}});
// whole_report() reads one whole report again.
struct Recording {
    nlohmann::json header;
    // After the header, in order; without their processes' numbers
    // ("processes", "gone"), which are in `points`, when read from a file.
    std::vector<nlohmann::json> records;
    std::vector<std::vector<ProcPoint>> points;  // one list per record
    std::vector<std::string> comms;              // ProcPoint::comm's names; [0] is ""
    // Why the file does not read to its end ("" when it does): truncated,
    // corrupt at some record, or written by a newer memtop.
    std::string problem;
    // The file, for whole_report(); "" for a Recording built in memory,
    // whose report records are whole.
    std::string path;
    // The report records (indices) whose stacks are whole rather than
    // deltas: whole_report() starts folding at the last one before.
    std::vector<size_t> stack_resets;

    const std::string& comm_of(const ProcPoint& p) const { return comms.at(p.comm); }
};

// A Recording built in memory from whole records (tests; no file): its
// points as read_recording() would keep them, its records as given.
Recording recording_of(nlohmann::json header, std::vector<nlohmann::json> records);

// A sample record's process entry for the HTML chart: the point's fields as
// the sample record names them (pid, epoch, heap_bytes, ..., comm).
nlohmann::json point_json(const Recording& rec, const ProcPoint& p);

// Reads what can be read of `path`. Throws MemtopError when not even the
// header reads (not a recording, or no such file).
Recording read_recording(const std::string& path);

// Record `index` of rec.records (a report) whole, its stacks folded from
// the deltas before it: the file is read again up to it. Throws
// std::runtime_error naming what is wrong.
nlohmann::json whole_report(const Recording& rec, size_t index);

// The reports of `rec`, in order, each to fn(n, report, whole), n its index
// in rec.records: whole (stacks folded, every field) where want_whole(n)
// says so (asked once per report, before it is read), else with its
// "time_ns", "final" and "processes" only. The file is read once and its
// samples are not parsed (rec.points hold them). `problem` as
// for_each_record's.
void for_each_report(const Recording& rec, const std::function<bool(size_t)>& want_whole,
                     const std::function<void(size_t, nlohmann::json&, bool)>& fn, std::string& problem);

// Every record of `path` after the header, in order, reports whole (stacks
// folded), to `fn` until it returns false. Returns the header; `problem`
// as Recording's. Throws as read_recording does.
nlohmann::json for_each_record(const std::string& path, const std::function<bool(size_t, nlohmann::json&)>& fn,
                               std::string& problem);

}  // namespace memtop
