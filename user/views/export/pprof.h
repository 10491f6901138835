// A report's heap stacks as a pprof profile (google/pprof profile.proto,
// gzip'd): what `go tool pprof`, Pyroscope, Parca and speedscope read.
// Pure: encoding and compressing only; the caller writes the file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/report.h"

namespace memtop {

// One profile of `stacks` (every heap stack of the final report, all
// processes together), each sample labelled with its process's pid and
// comm. Sample types in Go's heap order: alloc_objects/count,
// alloc_space/bytes, inuse_objects/count, inuse_space/bytes (the default).
// Values are exact (every allocation is traced: period 1). Returns the
// serialized profile, not yet compressed. `python_stacks` (Python's object
// domain, --python-objects), when given, add four sample types of their own:
// python_alloc_objects, python_alloc_space, python_inuse_objects,
// python_inuse_space (`go tool pprof -sample_index=python_inuse_space`).
std::string encode_pprof(const Report& r, const std::vector<ReportStack>& stacks,
                         const std::vector<ReportStack>& python_stacks = {});

// gzip (zlib, RFC 1952) of `data`; throws std::runtime_error if zlib fails.
std::string gzip(std::string_view data);
// The inverse, for tests and readers of memtop's own files; throws on
// corrupt input.
std::string gunzip(std::string_view data);

}  // namespace memtop
