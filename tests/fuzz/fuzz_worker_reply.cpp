// memtop's decoders of memtop-cfi's answers (attach/file_plan.h:
// decode_plan for request 'P', decode_file_symbols for 'S') on arbitrary
// bytes, as a compromised worker could send them. The first byte picks the
// decoder, the next 8 the file's size. What a decoder accepts must encode
// and decode again to the same bytes: every value read was checked and
// nothing was left out.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "attach/file_plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 9) return 0;
    const uint8_t pick = data[0] % 3;
    uint64_t file_size = 0;
    std::memcpy(&file_size, data + 1, sizeof file_size);
    const std::string_view body(reinterpret_cast<const char*>(data + 9), size - 9);
    if (pick < 2) {
        const auto kind = pick == 0 ? memtop::PlanKind::Probes : memtop::PlanKind::Pymalloc;
        memtop::wire::Reader r(body);
        memtop::FilePlan p;
        if (!memtop::decode_plan(r, kind, file_size, p).empty()) return 0;
        p.kind = kind;
        memtop::wire::Writer w('p');
        memtop::encode_plan(w, p);
        memtop::wire::Reader again(std::string_view(w.bytes()).substr(1));
        memtop::FilePlan q;
        if (!memtop::decode_plan(again, kind, file_size, q).empty()) abort();
        memtop::wire::Writer w2('p');
        memtop::encode_plan(w2, q);
        if (w2.bytes() != w.bytes()) abort();
        return 0;
    }
    memtop::wire::Reader r(body);
    memtop::FileSymbols s;
    if (!memtop::decode_file_symbols(r, file_size, s).empty()) return 0;
    memtop::wire::Writer w('s');
    memtop::encode_file_symbols(w, s);
    // Nothing in the encoding is ignored on the way in: the same bytes.
    if (std::string_view(w.bytes()).substr(1) != body) abort();
    return 0;
}
