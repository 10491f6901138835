// `memtop report FILE --plot OUT.svg`: memory over time per process, as
// `mprof plot` draws it, for pasting into a ticket. The heap comes from the
// recording's samples (every --record-interval) and its reports, resident
// memory (RSS) too (samples hold it since format version 2), and the
// Python domain (samples hold it since version 3); each process's highest
// heap (its highest RSS without a heap) is marked, and its Python peak. Pure: builds
// the SVG text; the caller writes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "record/recording.h"

namespace memtop {

struct PlotPoint {
    int64_t t_ns = 0;
    int64_t bytes = 0;
};

// One process instance's series, in time order.
struct ProcessSeries {
    uint32_t pid = 0, epoch = 0;
    std::string comm;  // "" when no report named it
    std::vector<PlotPoint> heap, rss;
    // The Python domain (--python-objects): pymalloc's objects, never in
    // the heap's bytes; empty for a process without one.
    std::vector<PlotPoint> python;
    int64_t peak() const;  // the highest heap point, else the highest RSS point
};

// Every process instance with a number in the recording, the highest peak
// first.
std::vector<ProcessSeries> memory_series(const Recording& rec);

// The SVG (1000 x 500): the `max_processes` with the highest peaks, one
// colour each, heap solid, RSS dashed, the Python domain dotted, the peak a
// dot labelled with its exact bytes (the Python domain's highest a square). Each line carries its numbers
// (data-values="SECONDS:BYTES
// ...") so that a reader can check them. `title` heads it.
std::string render_plot_svg(const Recording& rec, const std::string& title, size_t max_processes = 8);

}  // namespace memtop
