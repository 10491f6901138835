#include "record/recording.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
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

// A number of a record as the int64_t every reader of it takes: a whole
// number, or (as JSON allows) one with a fraction, truncated as the plot and
// the moments read it. nullopt when it is no number or does not fit: a cast
// of 1e300 is undefined behaviour (found by tests/fuzz/fuzz_recording).
std::optional<int64_t> whole_number(const json& v) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<uint64_t>();
        if (u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
        return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    if (!v.is_number_float()) return std::nullopt;
    const double d = v.get<double>();
    // 2^63 is exact as a double; every double below it in magnitude fits.
    if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0)) return std::nullopt;
    return static_cast<int64_t>(d);
}

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
    series,  // a report's time, processes and stacks: folded, its processes shown (the HTML chart)
    whole,
};

// A report's fields each mode keeps; a record's other fields are kept.
bool keep_report_field(Parse mode, const std::string& key) {
    if (mode == Parse::whole) return true;
    if (key == "time_ns") return true;
    if (mode == Parse::light) return key == "processes" || key == "final";
    if (mode == Parse::series && (key == "processes" || key == "final")) return true;
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
        // Only a report handed on whole gets its stacks copied in.
        if (fold && j["type"] == "report" && j.contains("report")) try {
                stacks.apply(j["report"], m == Parse::whole);
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

// A process entry's numbers as a point; nullopt when it names no pid.
class PointMaker {
public:
    explicit PointMaker(std::vector<std::string>& comms) : comms_(comms) {
        if (comms_.empty()) comms_.push_back("");
        for (uint32_t i = 0; i < comms_.size(); i++) ids_.emplace(comms_[i], i);
    }

    std::optional<ProcPoint> operator()(const json& e) {
        if (!e.is_object()) return std::nullopt;
        const auto pid = e.find("pid");
        if (pid == e.end() || !pid->is_number_unsigned()) return std::nullopt;
        ProcPoint p;
        p.pid = static_cast<uint32_t>(pid->get<uint64_t>());
        if (const auto ep = e.find("epoch"); ep != e.end() && ep->is_number_unsigned())
            p.epoch = static_cast<uint32_t>(ep->get<uint64_t>());
        num(p, e, "heap_bytes", ProcPoint::kHeap, p.heap_bytes);
        num(p, e, "heap_peak_bytes", ProcPoint::kHeapPeak, p.heap_peak_bytes);
        num(p, e, "allocs_total", ProcPoint::kAllocs, p.allocs_total);
        num(p, e, "frees_total", ProcPoint::kFrees, p.frees_total);
        num(p, e, "rss_bytes", ProcPoint::kRssBytes, p.rss_bytes);
        num(p, e, "rss_peak_bytes", ProcPoint::kRssPeak, p.rss_peak_bytes);
        num(p, e, "mapped_bytes", ProcPoint::kMapped, p.mapped_bytes);
        num(p, e, "mapped_peak_bytes", ProcPoint::kMappedPeak, p.mapped_peak_bytes);
        // The Python domain: a sample of a process without one (no
        // CPython, no --python-objects) or of a file before version 3
        // holds neither.
        num(p, e, "py_bytes", ProcPoint::kPy, p.py_bytes);
        num(p, e, "py_peak_bytes", ProcPoint::kPyPeak, p.py_peak_bytes);
        // A report lists the py_* of every process, 0 without a domain: a
        // process whose Python allocator never allocated has none.
        if (const auto a = e.find("py_allocs_total"); a != e.end() && whole_number(*a) == 0) {
            const auto f = e.find("py_frees_total");
            if (f == e.end() || whole_number(*f) == 0) p.has &= ~(ProcPoint::kPy | ProcPoint::kPyPeak);
        }
        if (const auto rss = e.find("rss"); rss != e.end() && rss->is_object()) {
            num(p, *rss, "file", ProcPoint::kRssFile, p.rss_file);
            num(p, *rss, "anon", ProcPoint::kRssAnon, p.rss_anon);
            num(p, *rss, "shmem", ProcPoint::kRssShmem, p.rss_shmem);
            num(p, *rss, "swap", ProcPoint::kRssSwap, p.rss_swap);
        }
        if (const auto t = e.find("heap_traced"); t != e.end() && t->is_boolean()) p.heap_traced = t->get<bool>();
        if (const auto k = e.find("mapped_known"); k != e.end() && k->is_boolean()) {
            p.has |= ProcPoint::kMappedKnown;
            p.mapped_known = k->get<bool>();
        }
        if (const auto c = e.find("comm"); c != e.end() && c->is_string()) {
            p.has |= ProcPoint::kComm;
            const auto& name = c->get_ref<const std::string&>();
            auto [it, added] = ids_.try_emplace(name, static_cast<uint32_t>(comms_.size()));
            if (added) comms_.push_back(name);
            p.comm = it->second;
        }
        return p;
    }

private:
    // A number the record holds as a whole number (or, as JSON allows, with
    // a fraction: read as the plot and the moments always read it).
    static void num(ProcPoint& p, const json& o, const char* key, uint16_t field, int64_t& out) {
        const auto v = o.find(key);
        if (v == o.end()) return;
        const auto n = whole_number(*v);
        if (!n) return;
        out = *n;
        p.has |= field;
    }
    std::vector<std::string>& comms_;
    std::map<std::string, uint32_t> ids_;
};

// Folds processes' numbers into points where they change (Recording's
// comment): `points` is where the hold points go.
class PointFolder {
public:
    explicit PointFolder(bool by_epoch) : by_epoch_(by_epoch) {}

    // The observation at record `index` (time t): `list` is every process
    // observed (full) or, with `gone`, only the changed ones. Leaves in
    // `list` only the points to keep.
    void observe(std::vector<std::vector<ProcPoint>>& points, size_t index, int64_t t, std::vector<ProcPoint>& list,
                 const json* gone) {
        std::vector<ProcPoint> kept;
        std::set<uint64_t> seen;
        for (auto& e : list) {
            const uint64_t k = key(e);
            seen.insert(k);
            auto it = live_.find(k);
            if (it != live_.end() && it->second.entry == e) continue;  // unchanged: observed, not kept
            if (it != live_.end()) hold(points, it->second);
            live_[k] = {e, t};
            kept.push_back(e);
        }
        if (gone) {
            if (gone->is_array())
                for (const auto& g : *gone)
                    if (g.is_number_unsigned()) end_of(points, (g.get<uint64_t>() & 0xffffffffu) << 32);
        } else {
            std::vector<uint64_t> ended;
            for (const auto& [k, l] : live_)
                if (!seen.count(k)) ended.push_back(k);
            for (auto k : ended) end_of(points, k);
        }
        list = std::move(kept);
        prev_index_ = index;
        prev_t_ = t;
    }

    // The recording's end: each live process's last numbers at the last observation.
    void finish(std::vector<std::vector<ProcPoint>>& points) {
        for (auto& [k, l] : live_) hold(points, l);
        live_.clear();
    }

private:
    struct Live {
        ProcPoint entry;
        int64_t t = 0;
    };
    uint64_t key(const ProcPoint& e) const { return uint64_t{e.pid} << 32 | (by_epoch_ ? e.epoch : 0); }
    // The old numbers, still seen at the previous observation: a point there.
    void hold(std::vector<std::vector<ProcPoint>>& points, const Live& l) {
        if (prev_index_ == SIZE_MAX || l.t >= prev_t_) return;
        points[prev_index_].push_back(l.entry);
    }
    void end_of(std::vector<std::vector<ProcPoint>>& points, uint64_t k) {
        auto it = live_.find(k);
        if (it == live_.end()) return;
        hold(points, it->second);
        live_.erase(it);
    }

    bool by_epoch_;
    std::map<uint64_t, Live> live_;
    size_t prev_index_ = SIZE_MAX;
    int64_t prev_t_ = 0;
};

// Builds a Recording's points record by record, as they are read; `strip`
// drops the numbers from the records kept (read from a file: the points
// hold them) rather than keeping the records whole (built in memory).
class PointIndex {
public:
    PointIndex(Recording& rec, bool strip) : rec_(rec), strip_(strip), make_(rec.comms) {}

    void add(size_t n, json& j) {
        std::vector<ProcPoint> list;
        const auto type = j.find("type");
        const bool sample = type != j.end() && *type == "sample", report = type != j.end() && *type == "report";
        if (sample && j.contains("processes") && j["processes"].is_array()) {
            for (const auto& e : j["processes"])
                if (auto p = make_(e)) list.push_back(*p);
            const auto gone = j.find("gone");
            rec_.points.emplace_back();
            samples_.observe(rec_.points, n, j.value("time_ns", int64_t{0}), list, gone == j.end() ? nullptr : &*gone);
            if (strip_) {
                j.erase("processes");
                j.erase("gone");
            }
        } else if (report && j.contains("report") && j["report"].is_object() && j["report"].contains("processes") &&
                   j["report"]["processes"].is_array()) {
            json& r = j["report"];
            for (const auto& e : r["processes"])
                if (auto p = make_(e)) list.push_back(light(*p));
            rec_.points.emplace_back();
            reports_.observe(rec_.points, n, r.value("time_ns", int64_t{0}), list, nullptr);
            if (strip_) r.erase("processes");
        } else {
            rec_.points.emplace_back();
        }
        rec_.points.back() = std::move(list);
        rec_.records.push_back(std::move(j));
    }
    void finish() {
        samples_.finish(rec_.points);
        reports_.finish(rec_.points);
    }

private:
    // A report's process: only the numbers the moments and the plot read
    // of it (its other counters change at every report: a point each).
    static ProcPoint light(ProcPoint p) {
        constexpr uint16_t kept = ProcPoint::kHeap | ProcPoint::kRssFile | ProcPoint::kRssAnon | ProcPoint::kRssShmem |
                                  ProcPoint::kRssSwap | ProcPoint::kMapped | ProcPoint::kMappedKnown |
                                  ProcPoint::kComm | ProcPoint::kPy;
        ProcPoint out;
        out.pid = p.pid, out.epoch = p.epoch, out.comm = p.comm, out.has = p.has & kept;
        out.heap_traced = p.heap_traced, out.mapped_known = p.mapped_known;
        out.heap_bytes = p.heap_bytes, out.mapped_bytes = p.mapped_bytes;
        // Its Python domain's bytes (kPy: the maker left it out for a
        // process without one).
        out.py_bytes = p.py_bytes;
        out.rss_file = p.rss_file, out.rss_anon = p.rss_anon, out.rss_shmem = p.rss_shmem, out.rss_swap = p.rss_swap;
        return out;
    }
    Recording& rec_;
    bool strip_;
    PointMaker make_;
    PointFolder samples_{false}, reports_{true};
};

}  // namespace

Recording read_recording(const std::string& path) {
    Recording rec;
    rec.path = path;
    PointIndex index(rec, true);
    rec.header = stream_records(
        path, [](size_t) { return Parse::light; }, false,
        [&](size_t n, json& j) {
            index.add(n, j);
            return true;
        },
        rec.problem, &rec.stack_resets);
    index.finish();
    return rec;
}

Recording recording_of(json header, std::vector<json> records) {
    Recording rec;
    rec.header = std::move(header);
    PointIndex index(rec, false);
    for (size_t n = 0; n < records.size(); n++) index.add(n, records[n]);
    index.finish();
    return rec;
}

json point_json(const Recording& rec, const ProcPoint& p) {
    json e = {{"pid", p.pid}, {"epoch", p.epoch}};
    auto put = [&](uint16_t f, const char* key, int64_t v) {
        if (p.holds(f)) e[key] = v;
    };
    put(ProcPoint::kHeap, "heap_bytes", p.heap_bytes);
    put(ProcPoint::kHeapPeak, "heap_peak_bytes", p.heap_peak_bytes);
    put(ProcPoint::kAllocs, "allocs_total", p.allocs_total);
    put(ProcPoint::kFrees, "frees_total", p.frees_total);
    put(ProcPoint::kRssBytes, "rss_bytes", p.rss_bytes);
    put(ProcPoint::kRssPeak, "rss_peak_bytes", p.rss_peak_bytes);
    put(ProcPoint::kMapped, "mapped_bytes", p.mapped_bytes);
    put(ProcPoint::kMappedPeak, "mapped_peak_bytes", p.mapped_peak_bytes);
    put(ProcPoint::kPy, "py_bytes", p.py_bytes);
    put(ProcPoint::kPyPeak, "py_peak_bytes", p.py_peak_bytes);
    if (p.has & (ProcPoint::kRssFile | ProcPoint::kRssAnon | ProcPoint::kRssShmem | ProcPoint::kRssSwap)) {
        json rss = json::object();
        if (p.holds(ProcPoint::kRssFile)) rss["file"] = p.rss_file;
        if (p.holds(ProcPoint::kRssAnon)) rss["anon"] = p.rss_anon;
        if (p.holds(ProcPoint::kRssShmem)) rss["shmem"] = p.rss_shmem;
        if (p.holds(ProcPoint::kRssSwap)) rss["swap"] = p.rss_swap;
        e["rss"] = std::move(rss);
    }
    if (!p.heap_traced) e["heap_traced"] = false;
    if (p.holds(ProcPoint::kMappedKnown)) e["mapped_known"] = p.mapped_known;
    if (p.holds(ProcPoint::kComm)) e["comm"] = rec.comm_of(p);
    return e;
}

json for_each_record(const std::string& path, const std::function<bool(size_t, json&)>& fn, std::string& problem) {
    return stream_records(
        path, [](size_t) { return Parse::whole; }, true, fn, problem);
}

void for_each_report(const Recording& rec, const std::function<bool(size_t)>& want_whole,
                     const std::function<void(size_t, json&, bool)>& fn, std::string& problem) {
    auto is_report = [&](size_t n) { return n < rec.records.size() && rec.records[n].value("type", "") == "report"; };
    if (rec.path.empty()) {
        for (size_t n = 0; n < rec.records.size(); n++)
            if (is_report(n) && rec.records[n].contains("report")) {
                json r = rec.records[n]["report"];
                fn(n, r, true);
            }
        return;
    }
    // Samples are not parsed again; a report not wanted whole is parsed
    // for its processes and stacks (to fold the later ones) only.
    bool whole = false;
    stream_records(
        rec.path,
        [&](size_t n) {
            if (!is_report(n)) return Parse::skip;
            whole = want_whole(n);
            return whole ? Parse::whole : Parse::series;
        },
        true,
        [&](size_t n, json& j) {
            if (j.contains("report") && j["report"].is_object()) fn(n, j["report"], whole);
            return true;
        },
        problem);
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
