// What every concern of one worker shares (README "Layout"): the configuration and the
// process's run environment, the loop, the control-plane pool and the metrics, and the one
// way a request is answered: in the envelope, metered, logged in one line, with an
// idempotency claim's answer stored first. A request on its way through is a Call.
//
// The concerns (management_api, runs, event_streams, runtime, databases, app_generation) each
// own their state and timers and reach each other only through what their headers offer;
// application.cpp builds them and routes requests to them.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arguments.hpp"
#include "config.hpp"
#include "envelope.hpp"
#include "executor/engine.hpp"
#include "flowgres/secret_box.hpp"
#include "http/server.hpp"
#include "metrics.hpp"
#include "pg/pool.hpp"
#include "prompts.hpp"
#include "router.hpp"
#include "web_assets.hpp"

namespace flowgres::daemon {

// What every run in the process shares: where http steps may connect, and their TLS context.
struct RunEnvironment {
    std::shared_ptr<const executor::EgressPolicy> egress;
    std::shared_ptr<const executor::TlsClientContext> tls;
    std::shared_ptr<const WebAssets> web;  // the public page's files (web/)
    std::shared_ptr<const Keyring> keyring;  // master keys for workspace database passwords
    std::shared_ptr<const Prompts> prompts;  // app generation's templates (daemon/prompts)
};

// The daemon's own writes act as the operator (a run must be recorded even if the caller's
// key is revoked meanwhile).
inline constexpr const char *kActAsOperator = "select set_config('flowgres.actor', 'operator', true)";
// Writes a later durable commit covers (a run's start, heartbeats, event batches, admissions)
// skip the wait for the disk: a run costs one durable commit, its outcome's, which makes
// everything before it durable too (the WAL is flushed in order).
inline constexpr const char *kNoDiskWait = "select set_config('synchronous_commit', 'off', true)";
// Both at once: one statement of the job instead of two (each costs the server a bind and an
// execution of its own, on every batch of a run's events; admission makes both inside its own
// statement, runtime.cpp).
inline constexpr const char *kOperatorNoDiskWait =
    "select set_config('flowgres.actor', 'operator', true), set_config('synchronous_commit', 'off', true)";

// "host:pid": who claims executions (executions.claimed_by).
const std::string &daemon_name();

// One request on its way through: what every step after the router needs.
struct Call {
    using Clock = std::chrono::steady_clock;

    http::Request request;
    http::Responder responder;
    TraceContext trace;
    Clock::time_point started;
    std::string route_label;  // metrics and logs: the operation, or the built-in path
    const Route *route = nullptr;
    SqlArguments arguments;
    bool operator_key = false;
    std::string key_hash;
    std::string idempotency_key;
    // An idempotency claim is held for a call that is not one SQL function (a run, database
    // work): its answer is stored (2xx) or the claim released before the answer goes out.
    bool store_answer = false;
    bool answered = false;
    std::vector<std::pair<std::string, std::string>> headers;  // added to whatever answer goes out
};

class WorkerContext {
public:
    WorkerContext(const Config &config, const RunEnvironment &environment, uv_loop_t *loop, pg::Pool &pool,
                  WorkerMetrics &metrics, int worker_index, int worker_count);

    const Config &config;
    const RunEnvironment &environment;
    uv_loop_t *const loop;
    pg::Pool &pool;
    WorkerMetrics &metrics;
    const int worker_index;  // worker 0 runs the process-wide sweeps
    const int worker_count;
    // The model-call limits from the configuration, for runs' llm steps and app generation.
    const llm::CallLimits llm_limits;

    // Answers `call` once (later answers are dropped): the envelope's headers, the request's
    // metrics and log line. An idempotency claim held for it is completed (2xx) or released
    // first.
    void finish(const std::shared_ptr<Call> &call, http::Response response);
    // An error answer. The text of an error that comes from outside the product (an exception,
    // a server's message) goes to the log, and the caller gets the code and the request id.
    void finish_error(const std::shared_ptr<Call> &call, ErrorCode code, std::string_view message,
                      std::string_view details = "null");
    void finish_database_error(const std::shared_ptr<Call> &call, const pg::JobResult &result);
    // A streamed answer's head is going out (200): the call counts as answered, in the metrics
    // and (with log_requests) a log line saying `what`.
    void note_stream_opened(const std::shared_ptr<Call> &call, std::string_view what);

    // The statement that makes a management call act as its key's user (checking the key and
    // its scope), or as the operator. Its answer is the key's id: pass it to note_key_use.
    pg::Statement actor_statement(const Call &call) const;
    // The key that authenticated `call`, from actor_statement's answer: its last use is written
    // in batches (flush_key_usage), not per request.
    void note_key_use(const Call &call, const std::optional<std::string> &key_id);
    // Writes the key uses noted since the last time, then runs `done` (may be empty).
    void flush_key_usage(std::function<void()> done);

private:
    std::set<std::string> used_keys_;
};

}  // namespace flowgres::daemon
