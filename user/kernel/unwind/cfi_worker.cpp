#include "kernel/unwind/cfi_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string_view>

#include "attach/elf_image.h"
#include "kernel/unwind/cfi_table.h"
#include "symbolize/sandbox.h"
#include "symbolize/wire.h"
#include "util/errors.h"
#include "util/unique_fd.h"

namespace memtop {
namespace {

// A file whose table the worker has not built in this long ends the worker;
// the file gets no table. libdw builds libc's in about 20 ms and a browser's
// libxul's in about a second: the margin is for a busy host, where a false
// time-out would only cost that file its table. A hostile file that loops
// costs this once, at attach (a -- CMD waits for its files' tables).
constexpr int kCfiTimeoutMs = 20000;

// A reason the worker gives longer than this is cut (it is printed).
constexpr size_t kMaxReason = 400;

// Test seams (docs/testing.md), in the worker: before it reads a file whose
// path ends with one of these, it crashes (as libdw on a hostile file
// could) or hangs (as a parser that loops would).
// The placement seams are separate: a test can fail one request and not
// the other on the same file.
// A garbled plan: the reply gets a byte more, as a compromised worker's
// could (memtop must reject it).
std::string g_crash_on, g_hang_on, g_place_crash_on, g_place_hang_on, g_place_garble_on;
std::string g_sym_crash_on, g_sym_hang_on, g_sym_garble_on;

void before_reading(const std::string& path, const std::string& crash_on, const std::string& hang_on) {
    if (ends_with_suffix(path, crash_on)) ::raise(SIGSEGV);
    if (ends_with_suffix(path, hang_on)) {
        for (;;) ::poll(nullptr, 0, -1);  // poll() is allowed by the seccomp filter; pause() is not
    }
}

// 'P' (path, kind; the descriptor attached) is answered with 'p': 1 and the
// plan (file_plan.h), or 0 and why there is none.
std::string serve_placement(wire::Reader& r, UniqueFd fd) {
    std::string path;
    uint8_t kind = 0;
    if (!r.str(path) || !r.num(kind) || !r.done() || !fd ||
        (kind != uint8_t(PlanKind::Probes) && kind != uint8_t(PlanKind::Pymalloc)))
        return "";
    before_reading(path, g_place_crash_on, g_place_hang_on);
    wire::Writer w('p');
    try {
        // The image takes the descriptor over and closes it: the worker
        // keeps nothing of a file.
        auto image = ElfImage::open_fd(fd.release(), path);
        FilePlan plan = make_plan(*image, static_cast<PlanKind>(kind));
        image.reset();
        w.num<uint8_t>(1);
        encode_plan(w, plan);
        if (ends_with_suffix(path, g_place_garble_on)) w.num<uint8_t>(0);
    } catch (const std::exception& e) {
        w = wire::Writer('p');
        w.num<uint8_t>(0).str(e.what());
    }
    return w.bytes();
}

// 'S' (path; the descriptor attached) is answered with 's': 1 and the
// file's symbols (file_plan.h), or 0 and why there are none.
std::string serve_symbols(wire::Reader& r, UniqueFd fd) {
    std::string path;
    if (!r.str(path) || !r.done() || !fd) return "";
    before_reading(path, g_sym_crash_on, g_sym_hang_on);
    wire::Writer w('s');
    try {
        auto image = ElfImage::open_fd(fd.release(), path, symbol_questions());
        const FileSymbols symbols = read_file_symbols(*image);
        image.reset();
        w.num<uint8_t>(1);
        encode_file_symbols(w, symbols);
        if (ends_with_suffix(path, g_sym_garble_on)) w.num<uint8_t>(0);
    } catch (const std::exception& e) {
        w = wire::Writer('s');
        w.num<uint8_t>(0).str(e.what());
    }
    return w.bytes();
}

// The worker's loop: 'C' (path, max_rows; the descriptor attached) is
// answered with 'c': 1, FDEs, unsupported rows, the row count, the rows
// (none when more than max_rows), or 0 and why there is no table.
void serve_cfi(int sock) {
    for (;;) {
        std::string msg;
        UniqueFd fd;
        if (receive_message(sock, msg, &fd, -1) != ReceiveStatus::Ok) return;
        wire::Reader r(msg);
        const char type = r.type();
        if (type == 'P' || type == 'S') {
            const std::string reply = type == 'P' ? serve_placement(r, std::move(fd)) : serve_symbols(r, std::move(fd));
            if (reply.empty() || !send_message(sock, reply)) return;
            continue;
        }
        std::string path;
        uint32_t max_rows = 0;
        if (type != 'C' || !r.str(path) || !r.num(max_rows) || !fd) return;
        before_reading(path, g_crash_on, g_hang_on);
        wire::Writer w('c');
        try {
            CfiTable t = build_cfi_table_fd(fd.get(), path);
            const size_t n = t.rows.size();
            if (n > UINT32_MAX) throw MemtopError(kExitFailure, "more rows than a table holds");
            std::string_view rows;
            if (n <= max_rows) rows = {reinterpret_cast<const char*>(t.rows.data()), n * sizeof(memtop_unwind_row)};
            w.num<uint8_t>(1).num<uint64_t>(t.fdes).num<uint64_t>(t.unsupported).num(static_cast<uint32_t>(n));
            w.str(rows);
        } catch (const std::exception& e) {
            // The builder says "unwind table for PATH: why": memtop says
            // the first part itself.
            std::string why = e.what();
            const std::string prefix = "unwind table for " + path + ": ";
            if (why.rfind(prefix, 0) == 0) why.erase(0, prefix.size());
            w = wire::Writer('c');
            w.num<uint8_t>(0).str(why);
        }
        // Closed before the reply: the worker keeps nothing of a file.
        fd.reset();
        if (!send_message(sock, w.bytes())) return;
        // Nor the heap a large table needed (a compiler's: tens of MB at
        // its height), which glibc would otherwise keep for good.
        release_free_heap();
    }
}

// The worker's text, as memtop prints it: no control characters (a
// compromised worker could otherwise write to memtop's terminal), bounded.
std::string printable(std::string_view s) {
    std::string out(s.substr(0, kMaxReason));
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return out.empty() ? "no table" : out;
}

}  // namespace

std::string check_cfi_rows(const std::vector<memtop_unwind_row>& rows) {
    // Called on every row of every table: the text is made only for a row
    // that is wrong.
    auto at = [](size_t i, const std::string& what) { return "row " + std::to_string(i) + ": " + what; };
    for (size_t i = 0; i < rows.size(); ++i) {
        const memtop_unwind_row& r = rows[i];
        if (i > 0 && r.off <= rows[i - 1].off) return at(i, "offsets out of order");
        const uint8_t type = memtop_row_type(&r);
        if (type > MEMTOP_ROW_PLT) return at(i, "type " + std::to_string(type) + " unknown");
        // memtop_row_cfa() is at most MEMTOP_ROW_CFA_MAX by its encoding
        // (21 bits); its high bits belong only to rows that have a CFA.
        const bool has_cfa = type == MEMTOP_ROW_CFA_RSP || type == MEMTOP_ROW_CFA_RBP;
        if (!has_cfa && (r.type >> 3) != 0) return at(i, "a CFA offset on a row without a CFA");
        if (r.rbp > 0) return at(i, "rbp saved above the CFA");
    }
    return "";
}

CfiWorker::CfiWorker() : client_("memtop-cfi", "unwind-table worker", serve_cfi, kCfiTimeoutMs) {
    // Inherited by the worker at its fork.
    g_crash_on = test_env("MEMTOP_TEST_CFI_WORKER_CRASH_ON");
    g_hang_on = test_env("MEMTOP_TEST_CFI_WORKER_HANG_ON");
    g_place_crash_on = test_env("MEMTOP_TEST_PLACEMENT_CRASH_ON");
    g_place_hang_on = test_env("MEMTOP_TEST_PLACEMENT_HANG_ON");
    g_place_garble_on = test_env("MEMTOP_TEST_PLACEMENT_GARBLE_ON");
    g_sym_crash_on = test_env("MEMTOP_TEST_SYMBOLS_CRASH_ON");
    g_sym_hang_on = test_env("MEMTOP_TEST_SYMBOLS_HANG_ON");
    g_sym_garble_on = test_env("MEMTOP_TEST_SYMBOLS_GARBLE_ON");
}

CfiWorker::~CfiWorker() = default;

CfiBuild CfiWorker::build(int fd, const std::string& path, size_t max_rows) {
    CfiBuild b;
    const uint32_t max = max_rows > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(max_rows);
    std::string reply;
    try {
        if (!client_.call(wire::Writer('C').str(path).num(max).bytes(), fd, reply, b.error)) {
            b.no_worker = !client_.start_error().empty();
            return b;
        }
    } catch (const std::exception& e) {  // memory, at worst
        b.error = e.what();
        return b;
    }
    wire::Reader r(reply);
    r.type();
    uint8_t ok = 0;
    uint64_t fdes = 0, unsupported = 0;
    uint32_t total = 0;
    std::string_view bytes;
    if (r.num(ok) && ok == 0) {
        if (r.view(bytes) && r.done()) {
            b.error = printable(bytes);
            return b;
        }
    } else if (ok == 1 && r.num(fdes) && r.num(unsupported) && r.num(total) && r.view(bytes) && r.done() &&
               bytes.size() == (total <= max ? size_t(total) * sizeof(memtop_unwind_row) : 0)) {
        b.fdes = fdes;
        b.unsupported = unsupported;
        b.total_rows = total;
        b.rows.resize(bytes.size() / sizeof(memtop_unwind_row));
        if (!bytes.empty()) std::memcpy(b.rows.data(), bytes.data(), bytes.size());
        const std::string wrong = check_cfi_rows(b.rows);
        if (wrong.empty()) return b;
        b.rows.clear();
        b.error = client_.discard() + " (" + wrong + ")";
        return b;
    }
    b.error = client_.discard();
    return b;
}

namespace {
// The client names the worker by its first role; a placement failure (or
// a symbols one, asked for placement) should not be read as an unwind
// table's.
std::string placement_role(const WorkerClient& client, std::string why) {
    const std::string role = "the " + client.role();
    auto at = why.find(role);
    if (at != std::string::npos) why.replace(at, role.size(), "the placement worker (memtop-cfi)");
    return why;
}

// memtop opens the file (as root: map_files reaches any process's
// mappings); the worker parses it. O_NONBLOCK: a path that became a FIFO
// must not block memtop. "" and the descriptor and size, or why not.
std::string open_regular(const std::string& open_path, const std::string& shown, UniqueFd& fd, uint64_t& size) {
    fd.reset(::open(open_path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    struct stat st {};
    if (!fd) return describe("open " + shown, errno);
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return "read " + shown + ": not a regular file";
    size = static_cast<uint64_t>(st.st_size);
    return "";
}
}  // namespace

PlacementResult CfiWorker::plan(int fd, const std::string& path, PlanKind kind, uint64_t file_size) {
    PlacementResult p;
    std::string reply;
    try {
        if (!client_.call(wire::Writer('P').str(path).num(static_cast<uint8_t>(kind)).bytes(), fd, reply, p.error)) {
            p.error = placement_role(client_, p.error);
            p.worker_failed = true;
            return p;
        }
        wire::Reader r(reply);
        r.type();
        uint8_t ok = 0;
        std::string_view why;
        if (r.num(ok) && ok == 0 && r.view(why) && r.done()) {
            p.error = printable(why);
            return p;
        }
        if (ok == 1) {
            const std::string wrong = decode_plan(r, kind, file_size, p.plan);
            if (wrong.empty()) return p;
            p.plan = FilePlan{};
            p.error = placement_role(client_, client_.discard()) + " (" + wrong + ")";
        } else {
            p.error = placement_role(client_, client_.discard());
        }
        p.worker_failed = true;
    } catch (const std::exception& e) {  // memory, at worst
        p.error = e.what();
        p.worker_failed = true;
    }
    return p;
}

PlacementResult CfiWorker::plan_file(const std::string& open_path, const std::string& shown, PlanKind kind) {
    UniqueFd fd;
    uint64_t size = 0;
    PlacementResult p;
    p.error = open_regular(open_path, shown, fd, size);
    if (p.error.empty()) p = plan(fd.get(), shown, kind, size);
    return p;
}

SymbolsResult CfiWorker::symbols(int fd, const std::string& path, uint64_t file_size) {
    SymbolsResult s;
    std::string reply;
    try {
        if (!client_.call(wire::Writer('S').str(path).bytes(), fd, reply, s.error)) {
            s.error = placement_role(client_, s.error);
            s.worker_failed = true;
            return s;
        }
        wire::Reader r(reply);
        r.type();
        uint8_t ok = 0;
        std::string_view why;
        if (r.num(ok) && ok == 0 && r.view(why) && r.done()) {
            s.error = printable(why);
            return s;
        }
        if (ok == 1) {
            const std::string wrong = decode_file_symbols(r, file_size, s.symbols);
            if (wrong.empty()) return s;
            s.symbols = FileSymbols{};
            s.error = placement_role(client_, client_.discard()) + " (" + wrong + ")";
        } else {
            s.error = placement_role(client_, client_.discard());
        }
        s.worker_failed = true;
    } catch (const std::exception& e) {  // memory, at worst
        s.error = e.what();
        s.worker_failed = true;
    }
    return s;
}

SymbolsResult CfiWorker::symbols_file(const std::string& open_path, const std::string& shown) {
    UniqueFd fd;
    uint64_t size = 0;
    SymbolsResult s;
    s.error = open_regular(open_path, shown, fd, size);
    if (s.error.empty()) s = symbols(fd.get(), shown, size);
    return s;
}

}  // namespace memtop
