#include "python/linetable.h"

#include <cstdint>

namespace memtop {

namespace {

// The table's variable-length integers: 6 bits per byte, least significant
// first, bit 6 set on every byte but the last.
struct Reader {
    std::string_view t;
    size_t pos = 0;
    bool ok = true;
    uint8_t byte() {
        if (pos >= t.size()) {
            ok = false;
            return 0;
        }
        return static_cast<uint8_t>(t[pos++]);
    }
    unsigned varint() {
        uint8_t b = byte();
        unsigned v = b & 63;
        for (unsigned shift = 6; ok && (b & 64) && shift < 32; shift += 6) {
            b = byte();
            v |= static_cast<unsigned>(b & 63) << shift;
        }
        return v;
    }
    int svarint() {
        unsigned v = varint();
        return (v & 1) ? -static_cast<int>(v >> 1) : static_cast<int>(v >> 1);
    }
};

}  // namespace

std::vector<LineRange> decode_linetable(std::string_view table, int firstlineno) {
    std::vector<LineRange> out;
    Reader r{table};
    int line = firstlineno, unit = 0;
    while (r.pos < table.size()) {
        uint8_t first = r.byte();
        if (!(first & 0x80)) break;  // every entry starts with bit 7 set
        int code = (first >> 3) & 15;
        int length = (first & 7) + 1;
        std::optional<int> here;
        switch (code) {
            case 15:  // no location
                break;
            case 14:  // long form: line delta, end line delta, column, end column
                line += r.svarint();
                r.varint();
                r.varint();
                r.varint();
                here = line;
                break;
            case 13:  // no column: line delta
                line += r.svarint();
                here = line;
                break;
            case 10:
            case 11:
            case 12:  // one-line forms: line delta code - 10, then two column bytes
                line += code - 10;
                r.byte();
                r.byte();
                here = line;
                break;
            default:  // short forms 0-9: same line, one column byte
                r.byte();
                here = line;
                break;
        }
        if (!r.ok) break;
        out.push_back({unit, length, here});
        unit += length;
    }
    return out;
}

std::optional<int> line_of(const std::vector<LineRange>& ranges, int unit) {
    for (const auto& r : ranges)
        if (unit >= r.start && unit < r.start + r.length) return r.line;
    return std::nullopt;
}

}  // namespace memtop
