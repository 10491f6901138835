// memtop's recording file (--record FILE, read by `memtop report FILE`):
// one gzip stream of JSON lines, flushed (Z_SYNC_FLUSH) after each line, so
// that a run killed at any moment leaves a file that reads up to its last
// whole record. Format: docs/recording.md.
#pragma once

#include <zlib.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace memtop {

// 2: samples and reports' stacks as deltas (record/deltas.h). Version 1
// files read as before.
inline constexpr int kRecordingVersion = 2;

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

// A recording as `memtop report` reads it: streamed, one record at a time,
// keeping what the moments, the plot and the HTML chart need and never the
// file. Samples and reports' processes are kept as points where a
// process's numbers changed (a version 2 sample lists only those), each
// preceded by a "hold" point (the old numbers at the previous observation)
// so that a line or a plateau is where it was; a report record keeps its
// time and those process points only ("report": {"time_ns", "processes"});
// whole_report() reads one whole report again.
struct Recording {
    nlohmann::json header;
    std::vector<nlohmann::json> records;  // after the header, in order
    // Why the file does not read to its end ("" when it does): truncated,
    // corrupt at some record, or written by a newer memtop.
    std::string problem;
    // The file, for whole_report(); "" for a Recording built in memory,
    // whose report records are whole.
    std::string path;
    // The report records (indices) whose stacks are whole rather than
    // deltas: whole_report() starts folding at the last one before.
    std::vector<size_t> stack_resets;
};

// Reads what can be read of `path`. Throws MemtopError when not even the
// header reads (not a recording, or no such file).
Recording read_recording(const std::string& path);

// Record `index` of rec.records (a report) whole, its stacks folded from
// the deltas before it: the file is read again up to it. Throws
// std::runtime_error naming what is wrong.
nlohmann::json whole_report(const Recording& rec, size_t index);

// Every record of `path` after the header, in order, reports whole (stacks
// folded), to `fn` until it returns false. Returns the header; `problem`
// as Recording's. Throws as read_recording does.
nlohmann::json for_each_record(const std::string& path, const std::function<bool(size_t, nlohmann::json&)>& fn,
                               std::string& problem);

}  // namespace memtop
