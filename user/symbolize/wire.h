// The byte encoding of the messages between memtop and its symbolization
// worker (sandbox.h): fixed-width integers and length-prefixed strings, in
// the host's order (both ends are the same binary). The reader checks
// every length against what is left: a worker's reply is not trusted.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace memtop::wire {

class Writer {
public:
    explicit Writer(char type) { out_.push_back(type); }
    template <typename T>
    Writer& num(T v) {
        out_.append(reinterpret_cast<const char*>(&v), sizeof v);
        return *this;
    }
    Writer& str(std::string_view s) {
        num(static_cast<uint32_t>(s.size()));
        out_.append(s);
        return *this;
    }
    Writer& opt_str(const std::optional<std::string>& s) {
        num<uint8_t>(s.has_value());
        return s ? str(*s) : *this;
    }
    // A number written later (a count known only at the end) at `pos`,
    // where size() was when num() wrote its placeholder.
    template <typename T>
    void put_at(size_t pos, T v) {
        std::memcpy(out_.data() + pos, &v, sizeof v);
    }
    size_t size() const { return out_.size(); }
    const std::string& bytes() const { return out_; }

private:
    std::string out_;
};

class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    char type() {
        char t = 0;
        num(t);
        return t;
    }
    template <typename T>
    bool num(T& v) {
        if (!ok_ || in_.size() < sizeof v) return ok_ = false;
        std::memcpy(&v, in_.data(), sizeof v);
        in_.remove_prefix(sizeof v);
        return true;
    }
    bool str(std::string& s) {
        std::string_view v;
        if (!view(v)) return false;
        s.assign(v);
        return true;
    }
    // A string as a view into the message (valid while the message is).
    bool view(std::string_view& s) {
        uint32_t n = 0;
        if (!num(n) || in_.size() < n) return ok_ = false;
        s = in_.substr(0, n);
        in_.remove_prefix(n);
        return true;
    }
    bool opt_str(std::optional<std::string>& s) {
        uint8_t has = 0;
        if (!num(has)) return false;
        if (!has) {
            s.reset();
            return true;
        }
        std::string v;
        if (!str(v)) return false;
        s = std::move(v);
        return true;
    }
    bool ok() const { return ok_; }
    // Everything read, nothing garbled.
    bool done() const { return ok_ && in_.empty(); }

private:
    std::string_view in_;
    bool ok_ = true;
};

}  // namespace memtop::wire
