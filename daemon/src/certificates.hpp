// Certificates of custom domains from an ACME CA (README "Custom domains"):
// POST /api/v1/domains/{id}/cert/issue and …/cert/renew (and their nested forms) claim the
// domain's order as the caller (app_domain_cert_begin), order the certificate (acme/), publish
// the HTTP-01 answers in the database for whichever daemon the CA reaches, and record the
// chain with its key sealed by the keyring (app_domain_cert_finish); ?async=true answers 202
// once claimed. Worker 0 sweeps, every domain_check_interval_ms, the domains cert_due names:
// active ones without a certificate, renewals from 30 days before expiry, failures whose retry
// time has come. Every daemon answers GET /.well-known/acme-challenge/{token} from the database.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "acme/acme_client.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

class Certificates {
public:
    explicit Certificates(WorkerContext &worker);

    void start();
    void stop();

    void run(std::shared_ptr<Call> call);
    void answer_challenge(std::shared_ptr<Call> call, const std::string &token);

private:
    struct Order;
    void with_account(std::shared_ptr<Order> order);
    void place(std::shared_ptr<Order> order);
    void record(std::shared_ptr<Order> order, const acme::Outcome &outcome);
    void sweep();
    void next_in_sweep();
    // Why no order can be placed here ("" when one can): no directory, no keyring.
    std::string missing_setup() const;

    WorkerContext &worker_;
    acme::Settings settings_;
    std::string setup_error_;
    uv_timer_t sweep_timer_{};
    bool started_ = false;
    bool sweeping_ = false;
    std::vector<std::pair<std::string, bool>> due_;  // domain id, renew
};

}  // namespace flowgres::daemon
