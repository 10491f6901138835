// --listen: memtop's reports over HTTP or HTTPS (/metrics, /report.json,
// /debug/pprof/heap), served by cpp-httplib from threads of their own,
// optionally behind basic auth. The session publishes each report
// (immutable, shared) and goes on; requests render from the last one
// published, so a slow or stuck client never holds up the loop that reads
// the kernel. Between reports a scrape gets the last one again.
#pragma once

#include <memory>
#include <string>

#include "model/report.h"
#include "views/metrics.h"

namespace memtop {

struct ListenAddress {
    std::string host;  // loopback unless named
    int port = 0;
};

// "PORT", "HOST:PORT" or "[IPv6]:PORT". Throws MemtopError(kExitUsage).
ListenAddress parse_listen(const std::string& spec);

// Who may ask, and how they connect. Empty: anyone who reaches the port.
struct ListenSecurity {
    std::string auth_file;  // --listen-auth FILE: basic auth, USER:PASSWORD (serve/auth.h)
    std::string tls_cert;   // --listen-cert FILE: HTTPS with this PEM certificate (chain)
    std::string tls_key;    // --listen-key FILE: and its PEM private key
};

// Checks what `s` names (the auth file's mode, owner and content; that the
// certificate and key load and match) as the server would, for a usage error before anything else happens. Throws
// MemtopError(kExitUsage).
void check_listen_security(const ListenSecurity& s);

class ReportServer {
public:
    // Binds now (a port in use is one error before anything is traced,
    // MemtopError(kExitFailure)) and serves until destroyed. With
    // security.auth_file, every request without its credentials gets 401;
    // with tls_cert and tls_key, only TLS is spoken (cpp-httplib's
    // SSLServer, OpenSSL).
    ReportServer(const ListenAddress& where, const MetricsOptions& metrics, const ListenSecurity& security = {});
    ~ReportServer();
    ReportServer(const ReportServer&) = delete;
    ReportServer& operator=(const ReportServer&) = delete;

    void publish(std::shared_ptr<const Report> r);
    int port() const;  // the bound one (PORT 0 picks a free one)

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace memtop
