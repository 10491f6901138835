#include "python/code_reader.h"

#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace memtop {

namespace {
// Strings and tables longer than this are not names memtop shows.
constexpr size_t kMaxString = 4096, kMaxTable = 1 << 20;

uint64_t u64_at(const std::vector<uint8_t>& b, uint32_t off) {
    uint64_t v = 0;
    if (off + 8 <= b.size()) std::memcpy(&v, b.data() + off, 8);
    return v;
}

// UTF-8 of one code point.
void put_utf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xc0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 63));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xe0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 63));
        out += static_cast<char>(0x80 | (c & 63));
    } else {
        out += static_cast<char>(0xf0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 63));
        out += static_cast<char>(0x80 | ((c >> 6) & 63));
        out += static_cast<char>(0x80 | (c & 63));
    }
}
}  // namespace

bool CodeReader::read(uint64_t addr, void* out, size_t len) {
    if (!addr) return false;
    iovec local{out, len}, remote{reinterpret_cast<void*>(addr), len};
    ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == ESRCH) gone_ = true;
    return n == static_cast<ssize_t>(len);
}

std::optional<std::string> CodeReader::read_str(uint64_t obj) {
    // PyASCIIObject: length, then state's bits interned:2, kind:3,
    // compact:1, ascii:1 (3.11); compact strings keep their characters
    // right after the header.
    uint64_t length = 0;
    uint32_t state = 0;
    if (!read(obj + layout_.unicode_length, &length, 8) || !read(obj + layout_.unicode_state, &state, 4))
        return std::nullopt;
    unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
    if (!compact || length > kMaxString || (kind != 1 && kind != 2 && kind != 4)) return std::nullopt;
    std::vector<uint8_t> data(length * kind);
    if (!data.empty() &&
        !read(obj + (ascii ? layout_.unicode_ascii_data : layout_.unicode_compact_data), data.data(), data.size()))
        return std::nullopt;
    if (ascii) return std::string(data.begin(), data.end());
    std::string out;
    for (size_t i = 0; i < length; i++) {
        uint32_t c = 0;
        std::memcpy(&c, data.data() + i * kind, kind);
        put_utf8(out, c);
    }
    return out;
}

std::optional<std::string> CodeReader::read_bytes(uint64_t obj) {
    int64_t size = 0;
    if (!read(obj + layout_.var_size, &size, 8) || size < 0 || static_cast<size_t>(size) > kMaxTable)
        return std::nullopt;
    std::string out(static_cast<size_t>(size), '\0');
    if (size && !read(obj + layout_.bytes_data, out.data(), out.size())) return std::nullopt;
    return out;
}

const CodeInfo* CodeReader::code(uint64_t addr) {
    // The header up to co_code_adaptive holds every field used.
    std::vector<uint8_t> header(layout_.code_adaptive);
    if (!read(addr, header.data(), header.size())) return nullptr;
    // Only what names the object: counts and caches in it change as it runs.
    std::vector<uint8_t> key;
    for (uint32_t off : {layout_.object_type, layout_.code_filename, layout_.code_name, layout_.code_qualname,
                         layout_.code_linetable}) {
        uint64_t v = u64_at(header, off);
        key.insert(key.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 8);
    }
    int32_t first = 0;
    std::memcpy(&first, header.data() + layout_.code_firstlineno, 4);
    key.insert(key.end(), reinterpret_cast<uint8_t*>(&first), reinterpret_cast<uint8_t*>(&first) + 4);
    auto it = cache_.find(addr);
    if (it != cache_.end() && it->second.header == key) return &it->second.info;

    auto qual = read_str(u64_at(header, layout_.code_qualname));
    if (!qual) qual = read_str(u64_at(header, layout_.code_name));
    auto file = read_str(u64_at(header, layout_.code_filename));
    auto table = read_bytes(u64_at(header, layout_.code_linetable));
    if (!qual || !file || !table) return nullptr;
    Entry e;
    e.header = std::move(key);
    e.info.qualname = std::move(*qual);
    // Relative: from the process's working directory; "<string>" and
    // "<frozen ...>" are names, not files.
    if (!cwd_.empty() && !file->empty() && file->front() != '/' && file->front() != '<')
        *file = cwd_ + "/" + (file->rfind("./", 0) == 0 ? file->substr(2) : *file);
    e.info.file = std::move(*file);
    e.info.firstlineno = first;
    e.info.lines = decode_linetable(*table, first);
    return &(cache_[addr] = std::move(e)).info;
}

std::optional<int> CodeReader::line(const CodeInfo& c, uint64_t addr, uint64_t instr) const {
    uint64_t start = addr + layout_.code_adaptive;
    // Before the first instruction (a frame just pushed): its first line.
    if (instr < start) return c.firstlineno;
    auto l = line_of(c.lines, static_cast<int>((instr - start) / 2));
    return l;
}

}  // namespace memtop
