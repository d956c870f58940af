// Custom domains' DNS checks (README "Custom domains"): POST /api/v1/domains/{id}/verify (and
// its nested form) claims the domain (app_domain_verify_begin, as the caller), asks the
// configured resolver for the TXT record _flowgres.<domain> holding the token and for the
// domain's CNAME to the platform host, and records what it found (app_domain_verify_finish):
// verified, or failed with the next check backed off. ?async=true answers 202 once claimed.
// Worker 0 also sweeps, every domain_check_interval_ms, the domains whose next check is due
// (any daemon may: the claim keeps two from checking one domain at once).
// The DNS questions block (c-ares, bounded by dns_timeout_ms): they run on a thread of their own.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "blocking_pool.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

class DomainChecks {
public:
    explicit DomainChecks(WorkerContext &worker);
    ~DomainChecks();

    void start();
    void stop(std::function<void()> done);

    void run(std::shared_ptr<Call> call);

private:
    struct Check;
    // Claimed (`document` is app_domain_verify_begin's answer): the lookups, then the record.
    void look_up(std::shared_ptr<Check> check);
    void record(std::shared_ptr<Check> check);
    void sweep();
    void next_in_sweep();

    WorkerContext &worker_;
    BlockingPool lookups_;
    uv_timer_t sweep_timer_{};
    bool started_ = false;
    bool sweeping_ = false;
    std::vector<std::string> due_;
};

}  // namespace flowgres::daemon
