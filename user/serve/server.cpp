#include "serve/server.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <httplib.h>
#include <openssl/err.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "serve/answer_cache.h"
#include "serve/auth.h"
#include "serve/delta.h"
#include "util/errors.h"
#include "views/export/pprof.h"
#include "views/json.h"

namespace memtop {

namespace {

// How much lower than the loop's the request threads' priority is.
constexpr int kRequestNice = 10;

// Request threads: enough for a few scrapers at once; more queue up.
constexpr size_t kThreads = 4;
// /debug/pprof/heap?seconds=N holds a request thread for the window: at
// most this many at once (the other threads keep answering scrapes), and
// no window longer than kMaxDeltaSeconds.
constexpr int kMaxDeltaWindows = 2;
constexpr long kMaxDeltaSeconds = 300;
// Answers kept per report: the exposition in both formats, plain and gzip'd,
// the JSON report, the whole pprof profile and some processes' (?pid=).
constexpr size_t kMaxAnswers = 64;

bool accepts_gzip(const httplib::Request& req) {
    return req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos;
}

// Sends a shared answer without copying it into the response.
void send(httplib::Response& res, AnswerCache::Body body, const char* content_type) {
    const size_t n = body->size();
    res.set_content_provider(n, content_type,
                             [body = std::move(body)](size_t offset, size_t length, httplib::DataSink& sink) {
                                 return sink.write(body->data() + offset, length);
                             });
}

double unix_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

ListenAddress parse_listen(const std::string& spec) {
    ListenAddress a{"127.0.0.1", 0};
    std::string port = spec;
    if (auto colon = spec.rfind(':'); colon != std::string::npos) {
        a.host = spec.substr(0, colon);
        port = spec.substr(colon + 1);
        if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']')
            a.host = a.host.substr(1, a.host.size() - 2);
        if (a.host.empty())
            throw MemtopError(kExitUsage, "--listen " + spec +
                                              ": no address before ':' (give PORT alone for "
                                              "loopback, or ADDRESS:PORT)");
    }
    char* end = nullptr;
    long v = strtol(port.c_str(), &end, 10);
    if (port.empty() || *end || v < 0 || v > 65535)
        throw MemtopError(kExitUsage, "--listen " + spec + ": '" + port + "' is not a port (0-65535)");
    a.port = static_cast<int>(v);
    return a;
}

namespace {

// The server that speaks TLS with --listen-cert and --listen-key (both or
// neither: the command line requires it), plain HTTP without.
std::unique_ptr<httplib::Server> make_http(const ListenSecurity& sec) {
    if (sec.tls_cert.empty()) return std::make_unique<httplib::Server>();
    // Unreadable files get the system's reason; OpenSSL's would not name the file.
    for (const auto& [opt, path] : {std::pair{"--listen-cert ", sec.tls_cert}, {"--listen-key ", sec.tls_key}})
        if (access(path.c_str(), R_OK) != 0) throw MemtopError(kExitUsage, describe(opt + path, errno));
    ERR_clear_error();
    auto tls = std::make_unique<httplib::SSLServer>(sec.tls_cert.c_str(), sec.tls_key.c_str());
    if (!tls->is_valid()) {
        char why[256] = "";
        if (unsigned long e = ERR_peek_last_error()) ERR_error_string_n(e, why, sizeof why);
        ERR_clear_error();
        throw MemtopError(kExitUsage, "--listen-cert " + sec.tls_cert + ", --listen-key " + sec.tls_key +
                                          ": not a PEM certificate and the private key that matches it" +
                                          (*why ? std::string(" (OpenSSL: ") + why + ")" : std::string()));
    }
    return tls;
}

}  // namespace

void check_listen_security(const ListenSecurity& s) {
    if (!s.auth_file.empty()) BasicAuth::load(s.auth_file);
    make_http(s);
}

struct ReportServer::Impl {
    std::unique_ptr<httplib::Server> http;  // an httplib::SSLServer with TLS
    std::optional<BasicAuth> auth;          // --listen-auth
    MetricsOptions metrics;
    std::thread thread;
    std::atomic<bool> done{false};  // listen_after_bind returned
    int port = 0;
    mutable std::mutex mu;
    std::shared_ptr<const Report> last;  // guarded by mu; the report itself is never changed
    std::condition_variable published;   // a report was published, or stopping
    bool stopping = false;               // guarded by mu
    std::atomic<int> delta_windows{0};   // ?seconds= requests waiting for their window's end
    AnswerCache answers{kMaxAnswers};

    std::shared_ptr<const Report> latest() const {
        std::lock_guard<std::mutex> lock(mu);
        return last;
    }

    // The first report made at `until` or later, waited for in the calling
    // (HTTP) thread; nullptr if the server stops first.
    std::shared_ptr<const Report> first_report_at(std::chrono::system_clock::time_point until) {
        std::unique_lock<std::mutex> lock(mu);
        published.wait(lock, [&] { return stopping || (last && last->time >= until); });
        return stopping ? nullptr : last;
    }
};

namespace {

// A text answer (the exposition, the JSON report), gzip'd for clients that
// accept it, as httplib would do for set_content, but once per report
// rather than once per request.
template <typename MakeText>
void send_text(AnswerCache& answers, const httplib::Request& req, httplib::Response& res,
               const std::shared_ptr<const Report>& r, const std::string& key, MakeText text,
               const char* content_type) {
    if (accepts_gzip(req)) {
        res.set_header("Content-Encoding", "gzip");
        res.set_header("Vary", "Accept-Encoding");
        send(res, answers.get(r, key + ".gz", [&] { return gzip(*text()); }), content_type);
    } else {
        send(res, text(), content_type);
    }
}

}  // namespace

ReportServer::ReportServer(const ListenAddress& where, const MetricsOptions& metrics, const ListenSecurity& security)
    : impl_(std::make_unique<Impl>()) {
    Impl& s = *impl_;
    s.metrics = metrics;
    if (!security.auth_file.empty()) s.auth = BasicAuth::load(security.auth_file);
    s.http = make_http(security);
    auto& http = *s.http;
    http.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
    // Requests carry no body; a slow client is dropped, not waited for.
    http.set_payload_max_length(4096);
    http.set_read_timeout(5, 0);
    http.set_write_timeout(5, 0);
    http.set_socket_options([](socket_t fd) {
        // -- CMD is forked after this: it must not inherit the socket.
        fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
        int yes = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });

    auto no_report = [](httplib::Response& res) {
        res.status = 503;
        res.set_header("Retry-After", "1");
        res.set_content("memtop: no report yet (the first comes one interval, -d, after start)\n", "text/plain");
    };
    http.Get("/metrics", [&s, no_report](const httplib::Request& req, httplib::Response& res) {
        auto r = s.latest();
        if (!r) return no_report(res);
        MetricsFormat f = metrics_format(req.get_header_value("Accept"));
        const bool om = f == MetricsFormat::OpenMetrics;
        auto text = [&] {
            return s.answers.get(r, om ? "openmetrics" : "prometheus",
                                 [&] { return render_metrics(*r, s.metrics, f); });
        };
        send_text(s.answers, req, res, r, om ? "openmetrics" : "prometheus", text,
                  om ? kOpenMetricsContentType : kPrometheusContentType);
    });
    http.Get("/report.json", [&s, no_report](const httplib::Request& req, httplib::Response& res) {
        auto r = s.latest();
        if (!r) return no_report(res);
        auto text = [&] { return s.answers.get(r, "json", [&] { return render_json(*r) + "\n"; }); };
        send_text(s.answers, req, res, r, "json", text, "application/json");
    });
    // ?seconds=N, a delta profile as Go's runtime serves it: the window
    // opens at the last report before the request and closes at the first
    // report made N seconds or more after the request (reports come every
    // -d), and the answer is what changed between the two (serve/delta.h).
    // The wait happens in this request's HTTP thread, never in the loop
    // that reads the kernel: the status and headers go out at once (with
    // the window's start), the profile when the window closes.
    auto delta = [&s, no_report](const httplib::Request& req, httplib::Response& res, std::optional<uint32_t> pid) {
        auto bad = [&res](int status, const std::string& why) {
            res.status = status;
            res.set_content("memtop: /debug/pprof/heap: " + why + "\n", "text/plain");
        };
        const std::string v = req.get_param_value("seconds");
        char* end = nullptr;
        errno = 0;
        long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end || errno == ERANGE || n < 1 || n > kMaxDeltaSeconds)
            return bad(400, "seconds=" + v + ": a delta profile's window is a whole number of seconds from 1 to " +
                                std::to_string(kMaxDeltaSeconds));
        auto start = s.latest();
        if (!start) return no_report(res);
        if (++s.delta_windows > kMaxDeltaWindows) {
            --s.delta_windows;
            res.set_header("Retry-After", std::to_string(n));
            return bad(503, std::to_string(kMaxDeltaWindows) + " delta profiles (?seconds=) are being made already");
        }
        auto until = std::chrono::system_clock::now() + std::chrono::seconds(n);
        char when[32];
        snprintf(when, sizeof when, "%.6f", unix_seconds(start->time));
        res.set_header("X-Memtop-Window-Start", when);
        res.set_header("Content-Disposition", "attachment; filename=\"heap.pb.gz\"");
        res.set_content_provider(
            "application/octet-stream",
            [&s, start, until, pid](size_t, httplib::DataSink& sink) {
                auto last = s.first_report_at(until);
                if (!last) return false;  // memtop is ending: the client sees the connection close
                std::string body;
                try {  // this runs after the handler, where httplib catches nothing
                    Report d = heap_delta(*start, *last, pid);
                    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(last->time - start->time);
                    body = gzip(with_duration(encode_pprof(d, d.all_stacks), nanos.count()));
                } catch (const std::exception&) {
                    return false;  // the status is sent: closing without a body is all that is left
                }
                sink.write(body.data(), body.size());
                sink.done();
                return true;
            },
            [&s](bool) { --s.delta_windows; });
    };
    // The heap profile of the last report, as Go's runtime serves it, for
    // `go tool pprof http://HOST:PORT/debug/pprof/heap` and agents that pull
    // it (Parca, Pyroscope); `?pid=N` keeps one process's stacks.
    http.Get("/debug/pprof/heap", [&s, no_report, delta](const httplib::Request& req, httplib::Response& res) {
        auto bad = [&res](const std::string& why) {
            res.status = 400;
            res.set_content("memtop: /debug/pprof/heap: " + why + "\n", "text/plain");
        };
        std::optional<uint32_t> pid;
        if (req.has_param("pid")) {
            const std::string v = req.get_param_value("pid");
            char* end = nullptr;
            errno = 0;
            unsigned long n = std::strtoul(v.c_str(), &end, 10);
            if (v.empty() || *end || v[0] == '-' || errno == ERANGE || n == 0 || n > UINT32_MAX)
                return bad("pid=" + v + " is not a process id");
            pid = static_cast<uint32_t>(n);
        }
        if (req.has_param("seconds")) return delta(req, res, pid);
        auto r = s.latest();
        if (!r) return no_report(res);
        auto body = s.answers.get(r, pid ? "pprof?pid=" + std::to_string(*pid) : std::string("pprof"), [&] {
            std::vector<ReportStack> stacks;
            for (const auto& st : r->all_stacks)
                if (!pid || st.stats.pid == *pid) stacks.push_back(st);
            return gzip(encode_pprof(*r, stacks));
        });
        res.set_header("Content-Disposition", "attachment; filename=\"heap.pb.gz\"");
        send(res, std::move(body), "application/octet-stream");
    });
    // A known path asked with another method is 405; httplib's own answers
    // are 404 for unknown paths and 400 for requests it cannot parse.
    // With --listen-auth, a request without the credentials gets 401 and
    // the challenge, whatever it asks for (no path tells anything first).
    http.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
        if (s.auth && !s.auth->accepts(req.get_header_value("Authorization"))) {
            res.status = 401;
            res.set_header("WWW-Authenticate", "Basic realm=\"memtop\", charset=\"UTF-8\"");
            res.set_content("memtop: authentication required\n", "text/plain");
            return httplib::Server::HandlerResponse::Handled;
        }
        if ((req.path == "/metrics" || req.path == "/report.json" || req.path == "/debug/pprof/heap") &&
            req.method != "GET" && req.method != "HEAD") {
            res.status = 405;
            res.set_header("Allow", "GET, HEAD");
            res.set_content("memtop: " + req.method + " " + req.path + ": only GET and HEAD\n", "text/plain");
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    });

    std::string where_text = (where.host.find(':') != std::string::npos ? "[" + where.host + "]" : where.host) + ":" +
                             std::to_string(where.port);
    if (where.port == 0) {
        s.port = http.bind_to_any_port(where.host);
        if (s.port < 0) s.port = 0;
    } else if (http.bind_to_port(where.host, where.port)) {
        s.port = where.port;
    }
    if (s.port <= 0)
        throw MemtopError(kExitFailure, describe("--listen " + where_text + ": cannot listen there", errno));

    // A client that goes away mid-answer raises SIGPIPE in the thread that
    // writes: blocked in the server's threads (which inherit this mask), it
    // stays pending there and the write fails with EPIPE instead. Ignoring
    // it process-wide would pass SIG_IGN on to -- CMD.
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    s.thread = std::thread([&s] {
        // Answers are built from published snapshots, but building them
        // (JSON, pprof, gzip) takes CPU that the loop reading the ring buffer
        // needs: many scrapers on a busy host made memtop lose events.
        // Linux keeps nice per thread and new threads inherit it, so the
        // listener and the request threads it starts yield to the loop.
        setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kRequestNice);
        s.http->listen_after_bind();
        s.done = true;
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    // stop() before the thread runs would be missed and the join would hang.
    while (!http.is_running() && !s.done) std::this_thread::yield();
}

ReportServer::~ReportServer() {
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->published.notify_all();  // delta windows end now, unanswered
    impl_->http->stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

void ReportServer::publish(std::shared_ptr<const Report> r) {
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        impl_->last = std::move(r);
    }
    impl_->published.notify_all();
}

int ReportServer::port() const {
    return impl_->port;
}

}  // namespace memtop
