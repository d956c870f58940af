// An ACME client (RFC 8555) on the worker's loop: the directory, a nonce, the account (made on
// first use), an order for one name, its HTTP-01 challenges (published first, so that whichever
// daemon the CA reaches answers them), the finalize with a CSR of a new P-256 key, and the
// certificate chain. Every request goes through the http steps' client (TLS verified against
// the system's CAs plus acme_ca_file). Polls are bounded: an order that is not done within its
// attempts fails with the CA's last word.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "acme/acme_crypto.hpp"
#include "executor/egress.hpp"
#include "executor/tls_client.hpp"

namespace flowgres::daemon::acme {

struct Settings {
    std::string directory_url;
    std::string email;  // the account's contact ("" none)
    std::shared_ptr<const executor::TlsClientContext> tls;
    std::shared_ptr<const executor::EgressPolicy> egress;
    uint64_t poll_interval_ms = 1000;  // between polls, unless the CA's Retry-After says otherwise
    int max_polls = 60;                // of one authorization, and of the order
};

struct Outcome {
    bool ok = false;
    std::string chain_pem;    // the certificate, then its issuers
    std::string key_pem;      // the certificate's private key
    std::string account_url;  // the account's URL (kid), also when it was made by this order
    std::string error;
};

// Publishes an HTTP-01 answer (token → key authorization) where every daemon finds it, then
// calls `published` (false and why: the order fails).
using PublishChallenge = std::function<void(const std::string &token, const std::string &key_authorization,
                                            std::function<void(bool published, std::string error)> published)>;

// Orders a certificate for `domain`. `account_url` "" makes the account first (with the key).
void order_certificate(uv_loop_t *loop, const Settings &settings, const EcKey &account_key, const std::string &account_url,
                       const std::string &domain, PublishChallenge publish, std::function<void(Outcome)> done);

}  // namespace flowgres::daemon::acme
