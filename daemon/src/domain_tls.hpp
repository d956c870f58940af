// Custom domains' certificates at the HTTPS listener (README "Custom domains"): what a TLS
// handshake for a name presents, chosen by SNI from memory: the database is asked only at the
// first handshake of a name that is on the list of names this process may answer for.
//   - The platform's names (platform_host and below), IP addresses and handshakes without a
//     name get the platform's certificate.
//   - The process keeps the list of names it may answer for (app_domain_tls_names: active
//     domains with a certificate), read when the first worker starts, again after any worker's
//     LISTEN connection came back (notifications may have been lost) and every 10 minutes. A
//     name not on it is refused at once (unrecognized_name): a storm of made-up names costs no
//     database call. Until the list is read, every name is treated as a candidate.
//   - A candidate's first handshake at this process waits for one database call
//     (app_domain_tls), which fills a process-wide cache: the domain's certificate (its key
//     opened with the keyring), or a refusal when it is not active, is blocked or has no
//     certificate. Every later handshake of the name is answered from memory.
//   - NOTIFY flowgres_domains (any change of a domain: activation, rollback, block, a new
//     certificate, deletion) drops the name at every daemon and makes it a candidate again,
//     so the next handshake reads it. Refusals also expire after 5 minutes, certificates
//     after an hour, in case a notification was missed.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/tls_server.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

// What every worker of the process shares.
class DomainTlsCache;
DomainTlsCache &domain_tls_cache();
// A change of the domain was announced: the name is looked up again at its next handshake.
// An empty name: notifications may have been lost, so the list of names is read again.
void forget_domain_tls(const std::string &domain);

// One worker's source: lookups from the shared cache, loads through this worker's pool.
class DomainTls : public http::CertificateSource {
public:
    explicit DomainTls(WorkerContext &worker);

    Found lookup(const std::string &name, SSL_CTX **context) override;
    // The same answer without counting a refusal (not a handshake: the HTTPS redirect's check).
    Found peek(const std::string &name, SSL_CTX **context);
    void load(const std::string &name, std::function<void()> done) override;
    // Reads the list of names if it is due and no worker is reading it: at start, after a
    // reconnect, and at a handshake once 10 minutes have passed (an idle listener needs none).
    void load_names_if_due();

private:
    WorkerContext &worker_;
    const std::vector<std::string> platform_hosts_;
    // Names being loaded by this worker, with the handshakes that wait for them.
    std::unordered_map<std::string, std::vector<std::function<void()>>> loading_;
};

}  // namespace flowgres::daemon
