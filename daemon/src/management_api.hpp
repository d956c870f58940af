// The management API (/api/v1, README "HTTP API"): a request is matched against the route
// table, authenticated by its API key (or the operator's), its arguments validated, and then
// made one pipelined database call (two when an Idempotency-Key must be claimed first), or
// handed to the concern its route names: runs, event streams, database work, domain checks,
// certificate orders, app generation.
#pragma once

#include <functional>
#include <memory>

#include "app_generation.hpp"
#include "certificates.hpp"
#include "databases.hpp"
#include "domain_checks.hpp"
#include "event_streams.hpp"
#include "runs.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

class ManagementApi {
public:
    ManagementApi(WorkerContext &worker, Runs &runs, Databases &databases, DomainChecks &domain_checks,
                  Certificates &certificates, AppGeneration &generation, EventStreams &streams)
        : worker_(worker), runs_(runs), databases_(databases), domain_checks_(domain_checks), certificates_(certificates),
          generation_(generation), streams_(streams) {}

    // The timers for the batched last_used_at writes and (worker 0) the idempotency clean-up.
    void start();
    void stop();

    void handle(std::shared_ptr<Call> call);

private:
    void run_call(std::shared_ptr<Call> call);
    void run_idempotent_call(std::shared_ptr<Call> call);
    // Claims call->idempotency_key: a stored answer is replayed, a conflict refused; otherwise
    // `claimed` runs.
    void claim_idempotency(std::shared_ptr<Call> call, std::function<void()> claimed);

    WorkerContext &worker_;
    Runs &runs_;
    Databases &databases_;
    DomainChecks &domain_checks_;
    Certificates &certificates_;
    AppGeneration &generation_;
    EventStreams &streams_;
    uv_timer_t touch_timer_{};
    uv_timer_t purge_timer_{};
    bool started_ = false;
};

}  // namespace flowgres::daemon
