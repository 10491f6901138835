#include "symbolize/worker_client.h"

#include <cstdlib>
#include <exception>

namespace memtop {

std::string duration_text(int ms) {
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

std::string test_env(const char* name) {
    const char* v = ::secure_getenv(name);
    return v ? v : "";
}

bool ends_with_suffix(const std::string& path, const std::string& suffix) {
    return !suffix.empty() && path.size() >= suffix.size() &&
           path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

WorkerClient::WorkerClient(std::string name, std::string role, std::function<void(int)> serve, int timeout_ms)
    : name_(std::move(name)), role_(std::move(role)), serve_(std::move(serve)), timeout_ms_(timeout_ms) {
    // Test seam (docs/testing.md): a shorter limit, so that a test of a
    // hang does not wait a minute. memtop's users do not set it.
    const std::string limit = test_env("MEMTOP_TEST_WORKER_TIMEOUT_MS");
    if (!limit.empty()) {
        char* end = nullptr;
        const long ms = std::strtol(limit.c_str(), &end, 10);
        if (end && *end == '\0' && ms >= 100 && ms <= 600000) timeout_ms_ = static_cast<int>(ms);
    }
}

WorkerClient::~WorkerClient() = default;

pid_t WorkerClient::pid() const {
    return worker_ ? worker_->pid() : 0;
}

bool WorkerClient::ensure_worker() {
    if (worker_) return true;
    if (!start_error_.empty()) return false;
    try {
        worker_ = std::make_unique<Worker>(name_, role_, serve_);
        ++generation_;
    } catch (const std::exception& e) {
        start_error_ = e.what();
        return false;
    }
    return true;
}

bool WorkerClient::call(const std::string& request, int fd, std::string& reply, std::string& failed,
                        const Aside& aside) {
    if (!ensure_worker()) {
        failed = start_error_;
        return false;
    }
    const char want = static_cast<char>(request.at(0) + ('a' - 'A'));
    ReceiveStatus s = ReceiveStatus::Closed;
    if (send_message(worker_->socket(), request, fd)) {
        for (;;) {
            s = receive_message(worker_->socket(), reply, nullptr, timeout_ms_);
            if (s != ReceiveStatus::Ok) break;
            if (!reply.empty() && reply[0] == want) return true;
            // Neither the reply nor a message the caller answers.
            if (!aside || !aside(reply, worker_->socket())) break;
        }
    }
    // Killed in every case (a worker that died already keeps its reason;
    // one that sent garbage or cannot be written to is ended), then reaped.
    worker_->kill();
    const std::string ended = worker_->end_reason();
    const std::string why =
        s == ReceiveStatus::TimedOut ? "did not answer within " + duration_text(timeout_ms_) : ended;
    worker_.reset();
    failed = "not read: the " + role_ + " " + why + " while reading it";
    return false;
}

std::string WorkerClient::discard() {
    worker_.reset();
    return "not read: the " + role_ + "'s reply was garbled";
}

}  // namespace memtop
