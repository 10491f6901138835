// Unwind tables built in a confined worker process, memtop-cfi: libdw's CFI
// interpreter and memtop's own .eh_frame decoding (cfi_table.h) read files
// the traced processes control, so they run without privileges, under the
// seccomp filter of the symbolization worker (symbolize/sandbox.h), on a
// descriptor memtop opened. A worker of its own, not the symbolizer's: the
// tables are built on the tracing path, names on the reporting path, and a
// file that hangs one must not stall the other.
//
// One request per file: the descriptor in, the rows out (8 bytes each, as
// they go to the kernel). memtop checks every row before it is written into
// the BPF maps (check_cfi_rows).
//
// The same worker plans the allocator probes of a file (request 'P',
// attach/file_plan.h): the symbol tables, relocations and code of the
// allocator libraries are read here too, not in memtop; and it answers
// what memtop asks of every file before that (request 'S': which define an
// allocator, how a -- CMD is linked, CPython's symbols). All run on the
// tracing path, at attach: one worker serves them (Tracer owns it).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "attach/file_plan.h"
#include "memtop.h"
#include "symbolize/worker_client.h"

namespace memtop {

// What the worker made of one file.
struct CfiBuild {
    // Why there is no table, "" when there is one: the builder's reason
    // ("no .eh_frame or .debug_frame"), or the worker's failure ("not read:
    // the unwind-table worker was killed by signal 11 (Segmentation fault)
    // while reading it"). Without the "unwind table for FILE: " prefix.
    std::string error;
    // No worker could be started (error says why): no file will get a table.
    bool no_worker = false;
    size_t fdes = 0;         // functions described
    size_t unsupported = 0;  // rows whose rule the BPF unwinder cannot follow
    size_t total_rows = 0;   // rows the table has
    // The rows, checked, when total_rows <= the request's max_rows; empty
    // otherwise (they would not fit: not sent).
    std::vector<memtop_unwind_row> rows;
};

// What the worker planned for one allocator file (request 'P').
struct PlacementResult {
    // Why there is no plan, "" when there is one: the parser's reason
    // ("read FILE: not an ELF file"), a plan that failed memtop's checks,
    // or the worker's failure ("not read: the placement worker (memtop-cfi)
    // was killed by signal 11 (Segmentation fault) while reading it").
    std::string error;
    bool worker_failed = false;  // the worker crashed, hung, sent garbage, or could not start
    FilePlan plan;               // checked (decode_plan)
};

// What the worker read of one file's headers and symbol tables (request
// 'S', FileSymbols in attach/file_plan.h).
struct SymbolsResult {
    // Why there is no answer, "" when there is one: as PlacementResult's
    // ("read FILE: not an ELF file", or the worker's failure).
    std::string error;
    bool worker_failed = false;  // the worker crashed, hung, sent garbage, or could not start
    FileSymbols symbols;         // checked (decode_file_symbols)
};

// "" when `rows` may go to the BPF unwinder as a table, else what is wrong:
// offsets not strictly increasing (the BPF side binary-searches them), a
// type that is not one of enum memtop_row_type, CFA offset bits on a row
// without a CFA, a saved rbp at or above the CFA (the builder keeps only
// offsets below it).
std::string check_cfi_rows(const std::vector<memtop_unwind_row>& rows);

// Not thread-safe: UnwindTables calls it from the tracing loop.
class CfiWorker {
public:
    // Reads the test seams (docs/testing.md): $MEMTOP_TEST_CFI_WORKER_CRASH_ON
    // and $MEMTOP_TEST_CFI_WORKER_HANG_ON (a path suffix), and the shared
    // $MEMTOP_TEST_WORKER_TIMEOUT_MS. The worker starts at the first build.
    CfiWorker();
    ~CfiWorker();
    CfiWorker(const CfiWorker&) = delete;
    CfiWorker& operator=(const CfiWorker&) = delete;

    // The table of the open file `fd`, called `path` (as mapped) in
    // messages and by the test seams; at most `max_rows` rows come back.
    // Never throws. A worker that crashed or hung on the file is replaced
    // at the next request; the file's error says so.
    CfiBuild build(int fd, const std::string& path, size_t max_rows);

    // Probe placement for the open file `fd` (a regular file of
    // `file_size` bytes), called `path` in messages and by the test seams
    // $MEMTOP_TEST_PLACEMENT_CRASH_ON / _HANG_ON: the worker runs
    // make_plan on it, memtop checks the reply (decode_plan). Never throws.
    PlacementResult plan(int fd, const std::string& path, PlanKind kind, uint64_t file_size);
    // The same for the file at `open_path` (as UnwindTables opens one: as
    // root, O_NONBLOCK, a regular file only), `shown` in messages. An error
    // with worker_failed false: the file could not be opened or parsed.
    PlacementResult plan_file(const std::string& open_path, const std::string& shown, PlanKind kind);

    // The headers and symbol tables of the open file `fd` (a regular file
    // of `file_size` bytes), called `path` in messages and by the test
    // seams $MEMTOP_TEST_SYMBOLS_CRASH_ON / _HANG_ON / _GARBLE_ON: the
    // worker runs read_file_symbols, memtop checks the reply
    // (decode_file_symbols). Never throws.
    SymbolsResult symbols(int fd, const std::string& path, uint64_t file_size);
    // The same for the file at `open_path`, opened as plan_file opens one.
    SymbolsResult symbols_file(const std::string& open_path, const std::string& shown);

    // The worker's pid, 0 when none runs.
    pid_t pid() const { return client_.pid(); }

private:
    WorkerClient client_;
};

}  // namespace memtop
