#include "record/recording.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <set>

#include "record/deltas.h"
#include "util/errors.h"
#include "util/exclusive_file.h"

namespace memtop {

RecordingWriter::RecordingWriter(const std::string& path, const nlohmann::json& meta, bool saved_from_screen)
    : path_(path) {
    file_ = create_exclusive_stream(saved_from_screen ? "save" : "--record", path);
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

namespace {

using nlohmann::json;

// The file's text, one line at a time, inflated as it is read: memory is a
// line and a buffer, whatever the file's size.
class LineSource {
public:
    explicit LineSource(const std::string& path) {
        file_ = fopen(path.c_str(), "rbe");
        if (!file_) throw MemtopError(kExitUsage, describe("read recording " + path, errno));
        struct stat st {};
        if (fstat(fileno(file_), &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
        inflateInit2(&z_, 15 + 16);
    }
    ~LineSource() {
        inflateEnd(&z_);
        fclose(file_);
    }
    LineSource(const LineSource&) = delete;
    LineSource& operator=(const LineSource&) = delete;

    // The next whole line (without its '\n'); false when no more can be read.
    bool next(std::string& line) {
        for (;;) {
            size_t end = text_.find('\n', pos_);
            if (end != std::string::npos) {
                line.assign(text_, pos_, end - pos_);
                pos_ = end + 1;
                return true;
            }
            if (done_) {
                if (pos_ < text_.size() && problem.empty()) problem = "its last record is cut short";
                return false;
            }
            if (pos_ > 0) {
                text_.erase(0, pos_);
                pos_ = 0;
            }
            more();
        }
    }

    std::string problem;

private:
    void more() {
        if (z_.avail_in == 0) {
            size_t n = fread(in_, 1, sizeof in_, file_);
            if (n == 0) {
                done_ = true;
                problem = "truncated (the run was killed, or the file was cut)";
                return;
            }
            z_.next_in = in_;
            z_.avail_in = static_cast<uInt>(n);
        }
        char out[65536];
        z_.next_out = reinterpret_cast<Bytef*>(out);
        z_.avail_out = sizeof out;
        int rc = inflate(&z_, Z_NO_FLUSH);
        text_.append(out, sizeof out - z_.avail_out);
        if (rc == Z_STREAM_END) {
            done_ = true;  // what follows the stream's end is not read
        } else if (rc == Z_DATA_ERROR || rc == Z_STREAM_ERROR || rc == Z_MEM_ERROR || rc == Z_NEED_DICT) {
            done_ = true;
            problem = "corrupt compressed data at byte " + std::to_string(z_.total_in) + " of " + std::to_string(size_);
        }
        // Z_OK, Z_BUF_ERROR: more input or output space, on the next call.
    }

    FILE* file_ = nullptr;
    uint64_t size_ = 0;
    z_stream z_{};
    Bytef in_[65536];
    std::string text_;
    size_t pos_ = 0;
    bool done_ = false;
};

// How much of a record to build.
enum class Parse {
    skip,    // not parsed at all (a report before the one a later whole one resets to)
    light,   // a report's time and processes only (read_recording's pass)
    stacks,  // a report's time and its stacks (all_stacks, all_stacks_delta): folded, not shown
    whole,
};

// A report's fields each mode keeps; a record's other fields are kept.
bool keep_report_field(Parse mode, const std::string& key) {
    if (mode == Parse::whole) return true;
    if (key == "time_ns") return true;
    if (mode == Parse::light) return key == "processes" || key == "final";
    return key == "all_stacks" || key == "all_stacks_delta";
}

json parse_record(const std::string& line, Parse mode, bool& whole_stacks) {
    whole_stacks = false;
    if (mode == Parse::whole) return json::parse(line, nullptr, false);
    // A callback drops the fields the pass does not need as they are read:
    // they are scanned, never built.
    std::string top_key;
    json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event != json::parse_event_t::key) return true;
        if (depth == 1) {
            top_key = parsed.get<std::string>();
            return true;
        }
        if (depth == 2 && top_key == "report") {
            const auto& key = parsed.get_ref<const std::string&>();
            if (key == "all_stacks") whole_stacks = true;
            return keep_report_field(mode, key);
        }
        return true;
    };
    return json::parse(line, cb, false);
}

// Is it a record: an object whose "type" is a string (what every reader
// of records then relies on), and whose times, where given, are numbers.
std::string record_fault(const json& j) {
    if (!j.is_object()) return "";
    const auto type = j.find("type");
    if (type == j.end()) return " (no type)";
    if (!type->is_string()) return " (its type is not a string)";
    auto bad_time = [](const json& o) {
        const auto t = o.find("time_ns");
        return t != o.end() && !t->is_number_integer();
    };
    if (bad_time(j)) return " (its time_ns is not a whole number)";
    if (const auto r = j.find("report"); r != j.end() && r->is_object() && bad_time(*r))
        return " (its report's time_ns is not a whole number)";
    return "ok";
}

// Streams `path`: the header checked, each record after it parsed as
// `mode(n)` says and, when `fold`, its report's stacks folded, then handed
// to `fn` (skipped records are not), until fn returns false.
// `resets`, when given, collects the records whose report has whole
// stacks (all_stacks), where folding can start.
json stream_records(const std::string& path, const std::function<Parse(size_t)>& mode, bool fold,
                    const std::function<bool(size_t, json&)>& fn, std::string& problem,
                    std::vector<size_t>* resets = nullptr) {
    LineSource src(path);
    std::string line;
    json header;
    bool whole_stacks = false;
    if (src.next(line)) header = json::parse(line, nullptr, false);
    // Fields looked at by type first: value() throws a json type_error on a
    // "type" or "version" of another type (found by fuzz_recording), which is
    // a file that is not a recording, not a crash of the reader.
    const auto type = header.is_object() ? header.find("type") : header.end();
    if (!header.is_object() || type == header.end() || !type->is_string() || *type != "memtop-recording")
        throw MemtopError(kExitUsage, "read recording " + path + ": not a memtop recording" +
                                          (src.problem.empty() ? "" : " (" + src.problem + ")"));
    StackDeltaReader stacks;
    problem.clear();
    for (size_t n = 0; src.next(line); n++) {
        const Parse m = mode(n);
        if (m == Parse::skip) continue;
        json j = parse_record(line, m, whole_stacks);
        const std::string fault = j.is_discarded() ? "" : record_fault(j);
        if (fault != "ok") {
            problem = "record " + std::to_string(n + 2) + " is corrupt" + fault;
            return header;
        }
        if (resets && whole_stacks) resets->push_back(n);
        if (fold && j["type"] == "report" && j.contains("report")) try {
                stacks.apply(j["report"]);
            } catch (const std::exception& e) {
                problem = "record " + std::to_string(n + 2) + ": " + e.what();
                return header;
            }
        if (!fn(n, j)) return header;
    }
    problem = src.problem;
    const auto v = header.find("version");
    const int64_t version = v != header.end() && v->is_number_integer() ? v->get<int64_t>() : 0;
    if (version > kRecordingVersion && problem.empty())
        problem = "written by a newer memtop (format version " + std::to_string(version) + ", this one reads " +
                  std::to_string(kRecordingVersion) + ")";
    return header;
}

// Folds processes' numbers into points where they change (Recording's
// comment): `records` is where the hold points go.
class PointFolder {
public:
    explicit PointFolder(bool by_epoch) : by_epoch_(by_epoch) {}

    // The observation at record `index` (time t): `list` is every process
    // observed (full) or, with `gone`, only the changed ones. Leaves in
    // `list` only the points to keep.
    void observe(std::vector<json>& records, size_t index, int64_t t, json& list, const json* gone) {
        json kept = json::array();
        std::set<uint64_t> seen;
        for (auto& e : list) {
            if (!e.is_object() || !e.contains("pid") || !e["pid"].is_number_unsigned()) continue;
            const uint64_t k = key(e);
            seen.insert(k);
            auto it = live_.find(k);
            if (it != live_.end() && it->second.entry == e) continue;  // unchanged: observed, not kept
            if (it != live_.end()) hold(records, it->second);
            live_[k] = {e, t};
            kept.push_back(std::move(e));
        }
        if (gone) {
            if (gone->is_array())
                for (const auto& g : *gone)
                    if (g.is_number_unsigned()) end_of(records, (g.get<uint64_t>() & 0xffffffffu) << 32);
        } else {
            std::vector<uint64_t> ended;
            for (const auto& [k, l] : live_)
                if (!seen.count(k)) ended.push_back(k);
            for (auto k : ended) end_of(records, k);
        }
        list = std::move(kept);
        prev_index_ = index;
        prev_t_ = t;
    }

    // The recording's end: each live process's last numbers at the last observation.
    void finish(std::vector<json>& records) {
        for (auto& [k, l] : live_) hold(records, l);
        live_.clear();
    }

    // Where a record of this kind keeps its points.
    std::function<json*(json&)> list_of;

private:
    struct Live {
        json entry;
        int64_t t = 0;
    };
    uint64_t key(const json& e) const {
        uint64_t pid = e["pid"].get<uint64_t>() & 0xffffffffu;
        uint64_t epoch = by_epoch_ && e.contains("epoch") && e["epoch"].is_number_unsigned()
                             ? e["epoch"].get<uint64_t>() & 0xffffffffu
                             : 0;
        return pid << 32 | epoch;
    }
    // The old numbers, still seen at the previous observation: a point there.
    void hold(std::vector<json>& records, const Live& l) {
        if (prev_index_ == SIZE_MAX || l.t >= prev_t_) return;
        if (json* list = list_of(records[prev_index_])) list->push_back(l.entry);
    }
    void end_of(std::vector<json>& records, uint64_t k) {
        auto it = live_.find(k);
        if (it == live_.end()) return;
        hold(records, it->second);
        live_.erase(it);
    }

    bool by_epoch_;
    std::map<uint64_t, Live> live_;
    size_t prev_index_ = SIZE_MAX;
    int64_t prev_t_ = 0;
};

// The numbers of a report's process that the moments and the plot read.
json light_process(const json& p) {
    json out = json::object();
    for (const char* f : {"pid", "epoch", "comm", "heap_traced", "heap_bytes", "rss", "mapped_known", "mapped_bytes"})
        if (auto it = p.find(f); it != p.end()) out[f] = *it;
    return out;
}

}  // namespace

Recording read_recording(const std::string& path) {
    Recording rec;
    rec.path = path;
    PointFolder samples(false), reports(true);
    samples.list_of = [](json& r) -> json* { return r.contains("processes") ? &r["processes"] : nullptr; };
    reports.list_of = [](json& r) -> json* {
        return r.contains("report") && r["report"].contains("processes") ? &r["report"]["processes"] : nullptr;
    };
    rec.header = stream_records(
        path, [](size_t) { return Parse::light; }, false,
        [&](size_t n, json& j) {
            const std::string& type = j["type"].get_ref<const std::string&>();
            if (type == "sample" && j.contains("processes") && j["processes"].is_array()) {
                const auto gone = j.find("gone");
                samples.observe(rec.records, n, j.value("time_ns", int64_t{0}), j["processes"],
                                gone == j.end() ? nullptr : &*gone);
            } else if (type == "report" && j.contains("report") && j["report"].is_object()) {
                json& r = j["report"];
                if (r.contains("processes") && r["processes"].is_array()) {
                    for (auto& p : r["processes"])
                        if (p.is_object()) p = light_process(p);
                    reports.observe(rec.records, n, r.value("time_ns", int64_t{0}), r["processes"], nullptr);
                }
            }
            rec.records.push_back(std::move(j));
            return true;
        },
        rec.problem, &rec.stack_resets);
    samples.finish(rec.records);
    reports.finish(rec.records);
    return rec;
}

json for_each_record(const std::string& path, const std::function<bool(size_t, json&)>& fn, std::string& problem) {
    return stream_records(
        path, [](size_t) { return Parse::whole; }, true, fn, problem);
}

json whole_report(const Recording& rec, size_t index) {
    if (index >= rec.records.size()) throw std::runtime_error("no record " + std::to_string(index + 2));
    if (rec.path.empty()) return rec.records[index].at("report");
    // The last report at or before `index` whose stacks are whole (every
    // version 1 report; in version 2, the first, and a reset) is where the
    // folding starts: the records before it are not parsed.
    auto reset = std::upper_bound(rec.stack_resets.begin(), rec.stack_resets.end(), index);
    const size_t from = reset == rec.stack_resets.begin() ? 0 : *std::prev(reset);
    json out;
    std::string problem;
    stream_records(
        rec.path,
        [&](size_t n) {
            if (n < from) return Parse::skip;
            if (n < index) return Parse::stacks;
            return Parse::whole;
        },
        true,
        [&](size_t n, json& j) {
            if (n < index) return true;
            if (n == index && j.contains("report")) out = std::move(j["report"]);
            return false;
        },
        problem);
    if (out.is_null())
        throw std::runtime_error("report " + std::to_string(index + 2) + " could not be read again" +
                                 (problem.empty() ? "" : ": " + problem));
    return out;
}

}  // namespace memtop
