#include "views/export/pprof.h"

#include <zlib.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include "profile.pb.h"

namespace memtop {

namespace {

namespace pb = perftools::profiles;

// s with each byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string valid_utf8(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    for (size_t i = 0; i < s.size();) {
        const unsigned c = b(i);
        size_t n = c < 0x80                        ? 1
                   : (c >> 5) == 0x6 && c >= 0xc2  ? 2
                   : (c >> 4) == 0xe               ? 3
                   : (c >> 3) == 0x1e && c <= 0xf4 ? 4
                                                   : 0;
        if (n > 1) {
            if (i + n > s.size()) n = 0;
            for (size_t k = 1; n && k < n; k++)
                if ((b(i + k) & 0xc0) != 0x80) n = 0;
            // Overlong three- and four-byte forms, surrogates, past U+10FFFF.
            if (n == 3 && ((c == 0xe0 && b(i + 1) < 0xa0) || (c == 0xed && b(i + 1) >= 0xa0))) n = 0;
            if (n == 4 && ((c == 0xf0 && b(i + 1) < 0x90) || (c == 0xf4 && b(i + 1) >= 0x90))) n = 0;
        }
        if (n == 0) {
            out += "\xef\xbf\xbd";
            i++;
        } else {
            out.append(s, i, n);
            i += n;
        }
    }
    return out;
}

// Builds the profile's tables: every string, mapping, function and location
// once, in first-use order.
class ProfileBuilder {
public:
    explicit ProfileBuilder(pb::Profile& p) : p_(p) { str(""); }  // string_table[0] is "" by the format

    int64_t str(const std::string& raw) {
        // profile.proto's strings are UTF-8 (protobuf refuses others); a
        // name read from a process (a symbol, a code object's) is bytes.
        const std::string s = valid_utf8(raw);
        auto [it, added] = strings_.try_emplace(s, static_cast<int64_t>(strings_.size()));
        if (added) p_.add_string_table(s);
        return it->second;
    }

    void value_type(pb::ValueType* v, const char* type, const char* unit) {
        v->set_type(str(type));
        v->set_unit(str(unit));
    }

    uint64_t location(uint32_t pid, const Frame& f) {
        uint64_t mapping_id = f.mapping && f.module ? mapping(*f.module, *f.mapping) : 0;
        // Without a mapping the same address means different code in
        // different processes (JIT code, anonymous memory). A Python
        // frame's address is its code object's, the same at each of its
        // lines: the line is part of the location.
        LocationKey key{mapping_id, f.address, mapping_id ? 0 : pid,
                        f.kind == FrameKind::Python ? f.line.value_or(0) : 0};
        auto it = locations_.find(key);
        if (it != locations_.end()) return it->second;
        pb::Location* l = p_.add_location();
        l->set_id(p_.location_size());
        l->set_mapping_id(mapping_id);
        l->set_address(f.address);
        // The inline chain, innermost first, then the function it is all
        // inlined into, at the call site: pprof's order for Location.line.
        for (const auto& in : f.inlined)
            if (in.function) add_line(l, *in.function, in.file, in.line);
        if (f.function) add_line(l, *f.function, f.file, f.line);
        if (mapping_id) {
            pb::Mapping* m = p_.mutable_mapping(static_cast<int>(mapping_id - 1));
            if (f.function) m->set_has_functions(true);
            if (f.file) m->set_has_filenames(true);
            if (f.line) m->set_has_line_numbers(true);
            if (!f.inlined.empty()) m->set_has_inline_frames(true);
        }
        locations_.emplace(key, l->id());
        return l->id();
    }

    // A stack the kernel could not store: its bytes still count, under a
    // name that says why it has no frames.
    uint64_t unknown_stack() {
        if (!unknown_) {
            pb::Location* l = p_.add_location();
            l->set_id(p_.location_size());
            add_line(l, "[stack not stored]", std::nullopt, std::nullopt);
            unknown_ = l->id();
        }
        return unknown_;
    }

private:
    using LocationKey = std::tuple<uint64_t, uint64_t, uint32_t, int>;

    uint64_t mapping(const std::string& path, const FrameMapping& fm) {
        auto key = std::make_tuple(path, fm.start, fm.end, fm.offset);
        auto it = mappings_.find(key);
        if (it != mappings_.end()) return it->second;
        pb::Mapping* m = p_.add_mapping();
        m->set_id(p_.mapping_size());
        m->set_memory_start(fm.start);
        m->set_memory_limit(fm.end);
        m->set_file_offset(fm.offset);
        m->set_filename(str(path));
        m->set_build_id(str(fm.build_id));
        mappings_.emplace(key, m->id());
        return m->id();
    }

    void add_line(pb::Location* l, const std::string& function, const std::optional<std::string>& file,
                  std::optional<int> line) {
        pb::Line* ln = l->add_line();
        ln->set_function_id(function_id(function, file.value_or("")));
        if (line) ln->set_line(*line);
    }

    uint64_t function_id(const std::string& name, const std::string& file) {
        auto key = std::make_pair(name, file);
        auto it = functions_.find(key);
        if (it != functions_.end()) return it->second;
        pb::Function* fn = p_.add_function();
        fn->set_id(p_.function_size());
        fn->set_name(str(name));
        fn->set_system_name(fn->name());
        fn->set_filename(str(file));
        functions_.emplace(key, fn->id());
        return fn->id();
    }

    pb::Profile& p_;
    std::unordered_map<std::string, int64_t> strings_;
    std::map<std::tuple<std::string, uint64_t, uint64_t, uint64_t>, uint64_t> mappings_;
    std::map<std::pair<std::string, std::string>, uint64_t> functions_;
    std::map<LocationKey, uint64_t> locations_;
    uint64_t unknown_ = 0;
};

std::string zlib_error(const char* what, int rc) {
    return std::string(what) + ": zlib error " + std::to_string(rc);
}

}  // namespace

std::string encode_pprof(const Report& r, const std::vector<ReportStack>& stacks,
                         const std::vector<ReportStack>& python_stacks) {
    pb::Profile p;
    ProfileBuilder b(p);
    b.value_type(p.add_sample_type(), "alloc_objects", "count");
    b.value_type(p.add_sample_type(), "alloc_space", "bytes");
    b.value_type(p.add_sample_type(), "inuse_objects", "count");
    b.value_type(p.add_sample_type(), "inuse_space", "bytes");
    // Python's object domain (pymalloc's blocks, never in the heap's
    // figures): its own four sample types, chosen with -sample_index, so
    // that no view adds the two domains' objects together. Every sample
    // has all eight values; a heap sample's Python ones are 0 and the other
    // way round.
    const bool python = !python_stacks.empty();
    if (python) {
        b.value_type(p.add_sample_type(), "python_alloc_objects", "count");
        b.value_type(p.add_sample_type(), "python_alloc_space", "bytes");
        b.value_type(p.add_sample_type(), "python_inuse_objects", "count");
        b.value_type(p.add_sample_type(), "python_inuse_space", "bytes");
    }
    p.set_default_sample_type(b.str("inuse_space"));
    b.value_type(p.mutable_period_type(), "space", "bytes");
    // --sample: the period is the mean bytes between samples, and the values
    // are already the unbiased estimates (each sample weighted by 1/p).
    p.set_period(r.sample_bytes ? static_cast<int64_t>(r.sample_bytes) : 1);
    p.set_time_nanos(std::chrono::duration_cast<std::chrono::nanoseconds>(r.time.time_since_epoch()).count());
    if (r.sample_bytes)
        p.add_comment(b.str("memtop: estimates: allocations sampled every " + std::to_string(r.sample_bytes) +
                            " bytes on average (--sample), each weighted by 1/p(size)"));
    else
        p.add_comment(b.str("memtop: exact numbers (every allocation traced, none sampled)"));
    if (python)
        p.add_comment(b.str(r.python_sampled
                                // In-process or at pymalloc's sites, at the domain's own mean (the
                                // heap's sample_bytes may be 0 or another).
                                ? "memtop: python_* are estimates: Python objects sampled by bytes (a Poisson "
                                  "process), each weighted by 1/p(size)"
                                : "memtop: python_*: Python's object allocator (pymalloc), every object traced; "
                                  "not in the heap's figures"));
    for (const auto& k : kLostKinds)
        if (r.lost[k.kind]) p.add_comment(b.str("memtop lost: " + std::to_string(r.lost[k.kind]) + " " + k.text));

    std::map<std::pair<uint32_t, uint32_t>, std::string> comm;
    for (const auto& proc : r.processes) comm[{proc.pid, proc.epoch}] = proc.comm;
    const int64_t pid_key = b.str("pid"), comm_key = b.str("comm");
    auto add = [&](const ReportStack& s, bool python_domain) {
        pb::Sample* sample = p.add_sample();
        for (const auto& f : s.frames) sample->add_location_id(b.location(s.stats.pid, f));
        if (s.frames.empty()) sample->add_location_id(b.unknown_stack());
        if (python_domain)
            for (int i = 0; i < 4; i++) sample->add_value(0);
        sample->add_value(static_cast<int64_t>(s.stats.allocs_total));
        sample->add_value(static_cast<int64_t>(s.stats.alloc_bytes_total));
        sample->add_value(s.stats.allocs);
        sample->add_value(s.stats.bytes);
        if (python && !python_domain)
            for (int i = 0; i < 4; i++) sample->add_value(0);
        pb::Label* pid = sample->add_label();
        pid->set_key(pid_key);
        pid->set_num(s.stats.pid);
        if (auto it = comm.find({s.stats.pid, s.stats.epoch}); it != comm.end()) {
            pb::Label* c = sample->add_label();
            c->set_key(comm_key);
            c->set_str(b.str(it->second));
        }
    };
    for (const auto& s : stacks) add(s, false);
    for (const auto& s : python_stacks) add(s, true);
    std::string out;
    if (!p.SerializeToString(&out)) throw std::runtime_error("encode pprof profile: protobuf serialization failed");
    return out;
}

std::string gzip(std::string_view data) {
    z_stream z{};
    // windowBits 15 + 16: a gzip header and trailer, not zlib's.
    int rc = deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) throw std::runtime_error(zlib_error("gzip", rc));
    std::string out(deflateBound(&z, data.size()) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::runtime_error(zlib_error("gzip", rc));
    return out;
}

std::string gunzip(std::string_view data) {
    z_stream z{};
    int rc = inflateInit2(&z, 15 + 16);
    if (rc != Z_OK) throw std::runtime_error(zlib_error("gunzip", rc));
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buf[65536];
    do {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&z);
            throw std::runtime_error(rc == Z_BUF_ERROR ? "gunzip: truncated input" : zlib_error("gunzip", rc));
        }
        out.append(buf, sizeof buf - z.avail_out);
    } while (rc != Z_STREAM_END);
    inflateEnd(&z);
    return out;
}

}  // namespace memtop
