// Custom domains' certificates at the HTTPS listener (README "Custom domains"): what a TLS
// handshake for a name presents, chosen by SNI without asking anything outside the process
// once the name is known.
//   - The platform's names (platform_host and below), IP addresses and handshakes without a
//     name get the platform's certificate.
//   - Any other name is looked up in a process-wide cache. The first handshake of a name this
//     process has not seen waits for one database call (app_domain_tls), which fills the cache:
//     an active domain's certificate (its key opened with the keyring), or a refusal for a name
//     that is unknown, not active, blocked, or without a certificate (the handshake fails with
//     unrecognized_name). Every later handshake of the name is answered from memory.
//   - NOTIFY flowgres_domains (any change of a domain: activation, rollback, block, a new
//     certificate, deletion) drops the name at every daemon; refusals also expire after 5
//     minutes, certificates after an hour, in case a notification was missed.
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
void forget_domain_tls(const std::string &domain);

// One worker's source: lookups from the shared cache, loads through this worker's pool.
class DomainTls : public http::CertificateSource {
public:
    explicit DomainTls(WorkerContext &worker);

    Found lookup(const std::string &name, SSL_CTX **context) override;
    // The same answer without counting a refusal (not a handshake: the HTTPS redirect's check).
    Found peek(const std::string &name, SSL_CTX **context);
    void load(const std::string &name, std::function<void()> done) override;

private:
    WorkerContext &worker_;
    const std::vector<std::string> platform_hosts_;
    // Names being loaded by this worker, with the handshakes that wait for them.
    std::unordered_map<std::string, std::vector<std::function<void()>>> loading_;
};

}  // namespace flowgres::daemon
