// The application of one worker: the http::Handler that turns requests into responses.
// Built-in endpoints (/health, /ready, /metrics, /openapi.json) answer here; /api/v1 routes
// authenticate, validate, and make one pipelined database call (two when an Idempotency-Key
// must be claimed first), then answer in the envelope, log one line and record metrics.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "arguments.hpp"
#include "blocking_pool.hpp"
#include "forwarding.hpp"
#include "config.hpp"
#include "envelope.hpp"
#include "flowgres/provisioner.hpp"
#include "flowgres/secret_box.hpp"
#include "executor/engine.hpp"
#include "http/server.hpp"
#include "jwt.hpp"
#include "metrics.hpp"
#include "pg/listener.hpp"
#include "pg/pool.hpp"
#include "pg/workspace_pools.hpp"
#include "prompts.hpp"
#include "router.hpp"
#include "run_recorder.hpp"
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

// "host:pid": who claims executions (executions.claimed_by).
const std::string &daemon_name();
// What a visitor sees of an execution (api_runtime.cpp): id, status, outputs, error.
std::string runtime_view(const std::string &execution_json);
std::string runtime_view(const json_t *execution);  // the same, from the execution already parsed

class Application : public http::Handler {
public:
    Application(const Config &config, const RunEnvironment &environment, uv_loop_t *loop, pg::Pool &pool,
                WorkerMetrics &metrics, int worker_index, int worker_count, const std::string &openapi_json);
    ~Application() override;

    size_t body_limit(const http::Request &request) const override;
    void handle(http::Request &&request, http::Responder responder) override;
    http::Response refusal(int status, const std::string &code, const std::string &message) const override;

    // Timers for the batched last_used_at writes and the idempotency clean-up.
    void start_background();
    // Writes the last key uses, then runs `done`.
    void stop_background(std::function<void()> done);
    // Shutdown, before draining: open event streams end (clients resume elsewhere with
    // Last-Event-ID), so their connections can close.
    void end_event_streams();

private:
    using Clock = std::chrono::steady_clock;
    // One request on its way through: what every step after the router needs.
    struct Call {
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
    void handle_api(std::shared_ptr<Call> call);
    void run_call(std::shared_ptr<Call> call);
    void run_idempotent_call(std::shared_ptr<Call> call);
    // Claims call->idempotency_key: a stored answer is replayed, a conflict refused; otherwise
    // `claimed` runs.
    void claim_idempotency(std::shared_ptr<Call> call, std::function<void()> claimed);
    void finish(const std::shared_ptr<Call> &call, http::Response response);
    void finish_error(const std::shared_ptr<Call> &call, ErrorCode code, std::string_view message,
                      std::string_view details = "null");
    void finish_database_error(const std::shared_ptr<Call> &call, const pg::JobResult &result);
    pg::Statement actor_statement(const Call &call) const;
    void flush_key_usage(std::function<void()> done);
    // api_runs.cpp: trial runs (POST /api/v1/apps/{id}/runs), executed in this daemon.
    struct ActiveRun;
    void run_trial(std::shared_ptr<Call> call);
    // What this worker keeps of a visitor app's admission answers (api_runtime.cpp): its
    // version's workflow, parsed, and its run preparation, opened, by key. The next admission
    // says it has them ("have_version", "have_preparation") and is not sent them again.
    struct OpenedPreparation {
        std::shared_ptr<const executor::RunSecrets> secrets;
        std::shared_ptr<const llm::RunModels> models;
        std::shared_ptr<const safety::RuleSet> rules;
    };
    struct HeldForRuns {
        std::string version_id;
        std::shared_ptr<const workflow::Workflow> workflow;
        std::string preparation_key;
        std::shared_ptr<const OpenedPreparation> preparation;
    };
    std::map<std::string, std::shared_ptr<const HeldForRuns>> held_for_runs_;  // "workspace/app" →
    // Runs a claimed execution ({…execution, "workflow"}) here; `waiting` is answered when it
    // ends (or at the wait limit), if given.
    // `runtime`: a visitor's run, answered with runtime_view (no node logs); `held_key` names
    // its app in held_for_runs_, and `held` is what the admission was told the worker has.
    void launch_run(Json claimed, std::shared_ptr<Call> waiting, bool runtime = false, const std::string &held_key = {},
                    std::shared_ptr<const HeldForRuns> held = nullptr);
    // api_databases.cpp: provisioning and password rotation, run by the provisioner on
    // libuv's thread pool (blocking libpq, seconds with retries) and answered on the loop.
    struct DatabaseWork;
    void run_database_operation(std::shared_ptr<Call> call);
    void queue_database_work(std::unique_ptr<DatabaseWork> work);
    void database_work_done(std::unique_ptr<DatabaseWork> work, int status);
    static void do_database_work(DatabaseWork *work);
    provisioner::Options provisioner_options() const;
    // Worker 0's sweeps: scheduled backups and expired app roles, worked through one at a time.
    struct BackgroundSweep {
        bool running = false;
        std::deque<std::string> pending;
    };
    void start_sweep(BackgroundSweep &sweep, pg::Statement query, void (Application::*next)());
    std::optional<std::string> next_in_sweep(BackgroundSweep &sweep);
    std::unique_ptr<DatabaseWork> operator_work();
    void back_up_due_databases();
    void back_up_next();
    void revoke_expired_roles();
    void revoke_next_expired();
    BackgroundSweep backup_sweep_;
    BackgroundSweep expiry_sweep_;
    uv_timer_t backup_timer_{};
    uv_timer_t expiry_timer_{};
    // run_database.cpp: database steps' view of the run's workspace database.
    class RunDatabase;
    std::shared_ptr<executor::WorkspaceDatabase> run_database(const std::string &workspace_id, const std::string &execution_id);
    // api_generation.cpp: apps from a prompt.
    struct Generation;
    void run_generation(std::shared_ptr<Call> call);
    void ask_model(std::shared_ptr<Generation> generation);
    void check_generated(std::shared_ptr<Generation> generation, std::string text);
    void record_generation_usage(std::shared_ptr<Generation> generation, std::function<void()> then);
    void end_generation(std::shared_ptr<Generation> generation, ErrorCode code, const std::string &message,
                        const std::string &details);
    // run_preparation.cpp: the secrets a run's credential fields reference and the routes to
    // its llm steps' models, read in one round trip and opened for it.
    using PreparedRun = std::function<void(std::shared_ptr<const executor::RunSecrets>,
                                           std::shared_ptr<const llm::RunModels>,
                                           std::shared_ptr<const safety::RuleSet>)>;
    void prepare_run(const std::string &workspace_id, const std::set<std::string> &secret_names,
                     const std::set<std::string> &model_names, PreparedRun done);
    // The same from documents already read: {"secrets", "routes", "safety_rules"}.
    void open_preparation(const std::string &workspace_id, const std::set<std::string> &secret_names,
                          const std::set<std::string> &model_names, const json_t *preparation, const PreparedRun &done);
    void connect_workspace(const std::string &workspace_id, std::function<void(pg::WorkspaceTarget)> done);
    std::unique_ptr<pg::WorkspacePools> workspace_pools_;
    std::unique_ptr<BlockingPool> database_work_pool_;  // the provisioner's, apart from libuv's (DNS)
    // api_runtime.cpp: /runtime/… for visitors.
    void handle_runtime(std::shared_ptr<Call> call);
    // `captcha_token`: checked with the provider only when the admission asks for a CAPTCHA
    // (after the rate limits counted the request), then admitted again with the outcome.
    void admit(std::shared_ptr<Call> call, Json admission, const std::string &action, const std::string &suffix,
               bool async, std::string captcha_token = "");
    void verify_captcha(const std::string &token, const std::string &client, std::function<void(bool)> done);
    // Load shedding (max_in_flight): executes being admitted and runtime runs going on here.
    int64_t runtime_admissions_ = 0;
    int64_t runtime_runs_ = 0;
    // Requests shed since the last flush, by workspace and app slug: recorded as
    // runtime.load_shed events once a second, a row per app rather than per request.
    std::map<std::pair<std::string, std::string>, int64_t> shed_counts_;
    void flush_shed_counts();
    void open_visitor_stream(const std::shared_ptr<Call> &call, const std::string &execution_id);
    void answer_schema(const std::shared_ptr<Call> &call, const Json &decision);
    // The HTML page for browsers (entry by Accept, and …/embed): the shell filled with the
    // app's SEO and the boot data, under a strict Content-Security-Policy.
    void answer_page(const std::shared_ptr<Call> &call, const Json &decision, bool embed);
    void answer_asset(const std::shared_ptr<Call> &call);
    CidrList trusted_proxies_;
    JwtSettings jwt_;
    // Takes queued executions (any daemon's) while this worker has room for more runs.
    void claim_queued();
    void finish_trial(const std::string &execution_id, executor::RunResult &&result);
    // Holds a model call's tokens (llm_tokens_reserve) before it is sent.
    executor::RunOptions::TokenReserver token_reserver(const std::string &execution_id,
                                                       const std::shared_ptr<ActiveRun> &active);
    // An admitted execution that will not run (its caller left): recorded as failed with `code`.
    void record_unstarted(const Json &execution, ErrorCode code);
    // A deferred run's row stored, running (execution_store_admitted); `then` runs when that
    // ends, stored or not (at once when there is nothing to store).
    void store_admitted(const std::string &execution_id, std::function<void()> then);
    // The waiting caller of a run, if any, once its recording is done.
    void answer_recorded_run(const std::shared_ptr<Call> &waiting, bool runtime, const pg::JobResult &recorded);
    void cancel_active_runs();
    void flush_run_events(const std::string &execution_id);

    // api_events.cpp: GET /api/v1/executions/{id}/events as Server-Sent Events.
    struct EventStream;
    struct Subscription;
    void open_event_stream(std::shared_ptr<Call> call);
    // The resume point from Last-Event-ID or `after`; answers 422 and returns nullopt when bad.
    std::optional<long long> stream_resume_point(const std::shared_ptr<Call> &call,
                                                 const std::optional<std::string> &after);
    // Streams call->arguments[0]'s events after `after`; a visitor's stream shows node events
    // without their data (progress only) and the execution's end with its outputs.
    void start_event_stream(const std::shared_ptr<Call> &call, long long after, const std::string &page,
                            bool visitor = false);
    // Reads the subscription's events after the least any of its streams has sent.
    void fetch_events(const std::string &execution_id);
    // Writes a page of execution_events to the streams; false if the page was not the last.
    bool deliver_page(Subscription &subscription, const std::string &page);
    void on_event_notification(const std::string &payload);
    void beat_event_streams();
    void end_stream(EventStream &stream);
    // Tells the metrics how many runs and streams this worker has now.
    void note_activity();
    std::map<std::string, std::shared_ptr<Subscription>> subscriptions_;
    uv_timer_t stream_timer_{};
    std::map<std::string, std::shared_ptr<ActiveRun>> active_runs_;
    std::unique_ptr<pg::Listener> listener_;
    uv_timer_t claim_timer_{};
    bool claiming_ = false;
    bool claim_again_ = false;
    // Whether queued runs may be waiting for this worker: false once a claim found none, true
    // again with a notification, the one-second sweep, or a claim put off for lack of room. A
    // finished run claims the next only then, not with a round trip per run.
    bool queue_may_wait_ = true;

    const Config &config_;
    const RunEnvironment &environment_;
    uv_loop_t *loop_;
    pg::Pool &pool_;
    RunRecorder recorder_;  // finished runs, recorded in batches
    WorkerMetrics &metrics_;
    int worker_index_;
    int worker_count_;
    const std::string &openapi_json_;
    std::set<std::string> used_keys_;
    uv_timer_t touch_timer_{};
    uv_timer_t purge_timer_{};
    bool background_started_ = false;
};

}  // namespace flowgres::daemon
