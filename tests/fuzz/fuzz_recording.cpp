// The recording reader on any bytes: `memtop report FILE` reads recordings
// other hosts wrote (docs/recording.md), so the file is input nobody here
// vouches for. The reader (gzip stream, JSON lines, header), the report
// codec and the JSON and text views must turn any of it into a report or
// one error, never a crash, a leak or undefined behaviour.
//
// The first byte picks what the rest is: even, the file itself (mostly
// broken gzip, which the reader must say is corrupt); odd, the JSON lines
// inside, which this target gzips first, so that mutations reach the JSON
// parsing and the report decoding rather than dying in inflate.
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

#include "record/recording.h"
#include "record/report_codec.h"
#include "util/errors.h"
#include "views/json.h"
#include "views/text.h"

namespace {

std::string gzip(const uint8_t* data, size_t size) {
    z_stream z{};
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    std::string out(deflateBound(&z, size) + 64, '\0');
    z.next_in = const_cast<Bytef*>(data);
    z.avail_in = static_cast<uInt>(size);
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static int fd = memfd_create("fuzz_recording", MFD_CLOEXEC);
    static const std::string path = "/proc/self/fd/" + std::to_string(fd);
    if (fd < 0 || ftruncate(fd, 0) != 0) abort();
    if (size == 0) return 0;
    const bool text = data[0] & 1;
    std::string file = text ? gzip(data + 1, size - 1) : std::string(reinterpret_cast<const char*>(data + 1), size - 1);
    if (!file.empty() && pwrite(fd, file.data(), file.size(), 0) != static_cast<ssize_t>(file.size())) abort();
    try {
        memtop::Recording rec = memtop::read_recording(path);
        for (size_t i = 0; i < rec.records.size(); i++) {
            const auto& r = rec.records[i];
            const auto type = r.find("type");  // the reader vouches for an object with a string "type"
            if (type == r.end() || !type->is_string()) abort();
            if (*type != "report") continue;
            try {
                // As `memtop report` does: a report that does not decode is
                // said, and the one before it shown. It is read again whole
                // (the reader keeps its time and processes only), its stacks
                // folded from the deltas before it.
                memtop::Report rep = memtop::decode_report(memtop::whole_report(rec, i));
                // --lines: the text view prints lines of the source file the
                // report names; not here (the fuzzer reads no file by name).
                if (rep.lines) rep.lines->matched.clear();
                (void)memtop::render_json(rep);
                (void)memtop::render_text(rep);
            } catch (const std::exception&) {
            }
        }
    } catch (const memtop::MemtopError&) {
        // Not a recording at all: one error for the user.
    }
    return 0;
}
