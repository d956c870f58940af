// The application of one worker: the http::Handler that turns requests into responses.
// Built-in endpoints (/health, /ready, /metrics, /openapi.json) answer here; /runtime and
// /assets go to the public runtime; everything else to the management API. Each concern
// owns its state and timers (worker_context.hpp lists them); this class builds them over one
// shared WorkerContext, starts them and stops them in order.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "app_generation.hpp"
#include "certificates.hpp"
#include "domain_tls.hpp"
#include "databases.hpp"
#include "domain_checks.hpp"
#include "event_streams.hpp"
#include "gateway/gateway.hpp"
#include "management_api.hpp"
#include "pg/listener.hpp"
#include "run_preparation.hpp"
#include "runs.hpp"
#include "runtime.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

class Application : public http::Handler {
public:
    Application(const Config &config, const RunEnvironment &environment, uv_loop_t *loop, pg::Pool &pool,
                WorkerMetrics &metrics, int worker_index, int worker_count, const std::string &openapi_json);
    ~Application() override;

    size_t body_limit(const http::Request &request) const override;
    void handle(http::Request &&request, http::Responder responder) override;
    http::Response refusal(int status, const std::string &code, const std::string &message) const override;

    // What the HTTPS listener presents for names other than the platform's (SNI).
    http::CertificateSource *certificate_source() { return &domain_tls_; }

    // Every concern's timers, and the listener whose notifications wake them.
    void start_background();
    // Runs going on are recorded as failed, the timers and the listener close, database work
    // waiting is cancelled, and the last key uses are written; then `done` runs.
    void stop_background(std::function<void()> done);
    // Shutdown, before draining: open event streams end (clients resume elsewhere with
    // Last-Event-ID), so their connections can close.
    void end_event_streams();

private:
    std::string custom_domain_of(const http::Request &request) const;
    void redirect_if_secured(std::shared_ptr<Call> call, const std::string &domain);

    WorkerContext worker_;
    EventStreams streams_;
    Databases databases_;
    DomainChecks domain_checks_;
    Certificates certificates_;
    DomainTls domain_tls_;
    RunPreparation preparation_;
    Runs runs_;
    Runtime runtime_;
    AppGeneration generation_;
    ManagementApi management_;
    std::unique_ptr<gateway::Gateway> gateway_;
    const std::string &openapi_json_;
    // Custom domains: whose forwarding headers name the requested host, and the names that are
    // the platform's own (platform_host).
    const CidrList trusted_proxies_;
    const std::vector<std::string> platform_hosts_;
    std::unique_ptr<pg::Listener> listener_;
    bool background_started_ = false;
};

}  // namespace flowgres::daemon
