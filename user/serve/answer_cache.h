// Answers of the HTTP endpoints, made once per published report.
//
// A report is never changed once published, so every scraper asking for
// the same thing (the Prometheus exposition, the JSON report, one pprof
// profile) between two reports gets the same bytes. Without this, each
// request rendered and compressed the whole report itself: 16 scrapers on a
// busy --heap-all host cost memtop 5 points of a core and ~70 MiB of
// resident memory more than one (tools/bench-serve.sh), all of it the same
// answer made again. Concurrent requests for an answer not made yet wait for
// the one request that makes it. Pure: no HTTP, unit-tested.
#pragma once

#include <cstddef>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "model/report.h"

namespace memtop {

class AnswerCache {
public:
    using Body = std::shared_ptr<const std::string>;

    // At most `max_answers` answers are kept per report (a scraper asking
    // for every pid must not grow memtop without bound); past that, answers
    // are made for the request alone.
    explicit AnswerCache(size_t max_answers) : max_answers_(max_answers) {}

    // The answer `key` (which endpoint, which variant) for report `r`, made
    // by `make` if no request made it for `r` yet. An exception from `make`
    // reaches every request that waited for that answer; the next report
    // tries again.
    Body get(const std::shared_ptr<const Report>& r, const std::string& key, const std::function<std::string()>& make);

    // Answers kept for the current report (for tests and the bound).
    size_t size() const;

private:
    const size_t max_answers_;
    mutable std::mutex mu_;
    std::shared_ptr<const Report> report_;  // the report the answers are of (kept: identity, not address)
    std::map<std::string, std::shared_future<Body>> answers_;
};

}  // namespace memtop
