// memtop's recording file (--record FILE, read by `memtop report FILE`):
// one gzip stream of JSON lines, flushed (Z_SYNC_FLUSH) after each line, so
// that a run killed at any moment leaves a file that reads up to its last
// whole record. Format: docs/recording.md.
#pragma once

#include <zlib.h>

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace memtop {

inline constexpr int kRecordingVersion = 1;

class RecordingWriter {
public:
    // Creates `path` and writes the header record (type "memtop-recording",
    // version, then `meta`). Throws MemtopError naming the file.
    RecordingWriter(const std::string& path, const nlohmann::json& meta);
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

struct Recording {
    nlohmann::json header;
    std::vector<nlohmann::json> records;  // after the header, in order
    // Why the file does not read to its end ("" when it does): truncated,
    // corrupt at some record, or written by a newer memtop.
    std::string problem;
};

// Reads what can be read of `path`. Throws MemtopError when not even the
// header reads (not a recording, or no such file).
Recording read_recording(const std::string& path);

}  // namespace memtop
