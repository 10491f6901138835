// memtop's side of a confined worker (sandbox.h): one request at a time,
// each answered within a time limit, the worker started when first needed
// and again after it died or hung. Shared by the symbolizer (memtop-symbols)
// and the unwind tables (memtop-cfi): each has its own worker, so that a
// file hanging one does not stall the other.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "symbolize/sandbox.h"

namespace memtop {

// "60 s", "1500 ms".
std::string duration_text(int ms);

// A test seam's value from the environment (docs/testing.md), "" when unset
// or when memtop runs with privileges its invoker lacks (secure_getenv:
// file capabilities, setuid).
std::string test_env(const char* name);

// Whether `path` ends with `suffix` (a test seam's file), "" never.
bool ends_with_suffix(const std::string& path, const std::string& suffix);

class WorkerClient {
public:
    // name: the worker's process name; role: what messages call it
    // ("symbolization worker"); serve: the worker's loop (sandbox.h);
    // timeout_ms: the limit per request, unless the test seam
    // $MEMTOP_TEST_WORKER_TIMEOUT_MS sets another.
    WorkerClient(std::string name, std::string role, std::function<void(int)> serve, int timeout_ms);
    ~WorkerClient();
    WorkerClient(const WorkerClient&) = delete;
    WorkerClient& operator=(const WorkerClient&) = delete;

    // A message of the worker's own sent while it works on a request (the
    // symbolization worker asks for debug files): answer it on `sock`;
    // false when it is not one the caller knows or the answer could not be
    // sent (the worker is then treated as failed).
    using Aside = std::function<bool(const std::string& message, int sock)>;

    // Sends `request` (type letter first, `fd` attached when >= 0) and waits
    // for the reply, whose type is the request's in lower case. If the
    // worker dies, does not answer in time or sends something else, it is
    // ended (the next call starts another) and `failed` says why: "not
    // read: the ROLE was killed by signal 11 (Segmentation fault) while
    // reading it", "... did not answer within 60 s ...". Also false, with
    // the reason, when no worker can be started.
    bool call(const std::string& request, int fd, std::string& reply, std::string& failed, const Aside& aside = {});

    // A reply the caller found garbled: the worker is ended (the next call
    // starts another); returns "not read: the ROLE's reply was garbled".
    std::string discard();

    bool running() const { return worker_ != nullptr; }
    // Counts the workers started: what a caller loaded into one worker must
    // be loaded again when this changes.
    uint64_t generation() const { return generation_; }
    pid_t pid() const;
    int timeout_ms() const { return timeout_ms_; }
    const std::string& role() const { return role_; }
    // Why no worker could be started, "" while none failed to: then every
    // call fails with this reason, and it is not tried again.
    const std::string& start_error() const { return start_error_; }

private:
    bool ensure_worker();

    std::string name_, role_;
    std::function<void(int)> serve_;
    int timeout_ms_;
    std::unique_ptr<Worker> worker_;
    uint64_t generation_ = 0;
    std::string start_error_;  // a worker could not be started: why (not tried again)
};

}  // namespace memtop
