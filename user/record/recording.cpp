#include "record/recording.h"

#include <cerrno>
#include <fstream>
#include <sstream>

#include "util/errors.h"
#include "util/exclusive_file.h"

namespace memtop {

RecordingWriter::RecordingWriter(const std::string& path, const nlohmann::json& meta) : path_(path) {
    file_ = create_exclusive_stream("--record", path);
    // windowBits 15 + 16: gzip, so `zcat FILE` reads it too.
    if (deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        fclose(file_);
        throw MemtopError(kExitFailure, "--record " + path + ": zlib initialization failed");
    }
    open_ = true;
    nlohmann::json header = {{"type", "memtop-recording"}, {"version", kRecordingVersion}};
    header.update(meta);
    write(header);
}

RecordingWriter::~RecordingWriter() {
    try {
        close();
    } catch (...) {
        // Said by close() callers; a destructor cannot.
    }
}

void RecordingWriter::deflate_out(int flush) {
    unsigned char buf[65536];
    do {
        z_.next_out = buf;
        z_.avail_out = sizeof buf;
        deflate(&z_, flush);
        size_t n = sizeof buf - z_.avail_out;
        if (n && fwrite(buf, 1, n, file_) != n) throw MemtopError(kExitFailure, describe("--record " + path_, errno));
    } while (z_.avail_out == 0);
}

void RecordingWriter::write(const nlohmann::json& record) {
    if (!open_) return;
    std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    z_.next_in = reinterpret_cast<Bytef*>(line.data());
    z_.avail_in = static_cast<uInt>(line.size());
    // A sync flush ends the deflate block on a byte boundary: everything
    // written so far inflates without the stream's end.
    deflate_out(Z_SYNC_FLUSH);
    if (fflush(file_) != 0) throw MemtopError(kExitFailure, describe("--record " + path_, errno));
}

void RecordingWriter::close() {
    if (!open_) return;
    open_ = false;
    z_.avail_in = 0;
    deflate_out(Z_FINISH);
    deflateEnd(&z_);
    int rc = fclose(file_);
    file_ = nullptr;
    if (rc != 0) throw MemtopError(kExitFailure, describe("--record " + path_, errno));
}

Recording read_recording(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw MemtopError(kExitUsage, describe("read recording " + path, errno));
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    Recording rec;
    std::string text;
    z_stream z{};
    inflateInit2(&z, 15 + 16);
    z.next_in = reinterpret_cast<Bytef*>(data.data());
    z.avail_in = static_cast<uInt>(data.size());
    int rc = Z_OK;
    char buf[65536];
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        text.append(buf, sizeof buf - z.avail_out);
        if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // input ends before the stream does
        if (rc == Z_BUF_ERROR) rc = Z_OK;                 // output buffer was full: go on
    }
    if (rc == Z_DATA_ERROR || rc == Z_STREAM_ERROR || rc == Z_MEM_ERROR)
        rec.problem =
            "corrupt compressed data at byte " + std::to_string(z.total_in) + " of " + std::to_string(data.size());
    else if (rc != Z_STREAM_END)
        rec.problem = "truncated (the run was killed, or the file was cut)";
    inflateEnd(&z);

    size_t pos = 0;
    size_t n = 0;
    for (size_t end; (end = text.find('\n', pos)) != std::string::npos; pos = end + 1, n++) {
        nlohmann::json j = nlohmann::json::parse(text.begin() + pos, text.begin() + end, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("type")) {
            rec.problem = "record " + std::to_string(n + 1) + " is corrupt";
            break;
        }
        if (n == 0)
            rec.header = std::move(j);
        else
            rec.records.push_back(std::move(j));
    }
    if (pos < text.size() && rec.problem.empty()) rec.problem = "its last record is cut short";
    // Fields looked at by type first: value() throws a json type_error on a
    // "type" or "version" of another type (found by fuzz_recording), which is
    // a file that is not a recording, not a crash of the reader.
    const auto type = rec.header.is_object() ? rec.header.find("type") : rec.header.end();
    if (!rec.header.is_object() || type == rec.header.end() || !type->is_string() || *type != "memtop-recording")
        throw MemtopError(kExitUsage, "read recording " + path + ": not a memtop recording" +
                                          (rec.problem.empty() ? "" : " (" + rec.problem + ")"));
    const auto v = rec.header.find("version");
    const int64_t version = v != rec.header.end() && v->is_number_integer() ? v->get<int64_t>() : 0;
    if (version > kRecordingVersion && rec.problem.empty())
        rec.problem = "written by a newer memtop (format version " + std::to_string(version) + ", this one reads " +
                      std::to_string(kRecordingVersion) + ")";
    return rec;
}

}  // namespace memtop
