// /metrics (--listen): a report in the Prometheus text format 0.0.4 or
// OpenMetrics 1.0. A pure function of a report, so the HTTP thread renders
// it from the last published report without touching the session.
// The names and labels are a contract (docs/metrics.md).
#pragma once

#include <cstddef>
#include <string>

#include "model/report.h"

namespace memtop {

enum class MetricsFormat { Prometheus, OpenMetrics };

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr const char* kOpenMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8";

struct MetricsOptions {
    bool pid_label = false;      // --metrics-pid-label: one series set per process, not per (comm, container, cgroup)
    size_t max_processes = 100;  // --metrics-max-processes: the live processes exported, largest resident first
};

// The format a scraper asked for in its Accept header.
MetricsFormat metrics_format(const std::string& accept);

std::string render_metrics(const Report& r, const MetricsOptions& o, MetricsFormat f);

// A label value as the exposition formats want it: valid UTF-8 (invalid
// bytes become U+FFFD), with backslash, double quote and newline escaped.
std::string escape_label_value(const std::string& v);

}  // namespace memtop
