// Request handling: built-ins, authentication, the database call, idempotency, logging.
#include "api.hpp"

#include <chrono>

#include "arguments.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "log.hpp"

namespace flowgres::daemon {

namespace {

constexpr const char *kAuthenticate = "select flowgres.api_key_authenticate($1, $2)";

// The route's call wrapped so the stored response commits with it (seed §105).
std::string idempotent_sql(const Route &route) {
    std::string inner = "flowgres." + std::string(route.function) + "(";
    size_t position = 0;
    for (const Argument &argument : route.arguments) {
        if (!passed_to_sql(argument)) continue;
        if (position) inner += ", ";
        inner += "$" + std::to_string(position++ + 3) + "::" + field_type_name(argument.type);
    }
    return "select flowgres.idempotency_complete($1::text, $2::integer, " + inner + "))::text";
}

// Errors whose text comes from outside the product (an exception, a database or provisioner
// message naming servers, roles or paths): the log keeps the text, the client gets the code,
// the table's description and the request id to quote. The operator sees the text too.
// (SCHEMA_CHANGE_FAILED keeps its text: it is the tenant's own statement failing on its data.)
bool carries_internal_text(ErrorCode code) {
    return code == ErrorCode::INTERNAL_ERROR || code == ErrorCode::PROVISION_FAILED || code == ErrorCode::BACKUP_FAILED ||
           code == ErrorCode::MIGRATION_FAILED;
}

// The details of such an error without the text members may not read ("error", "message").
std::string without_error_text(std::string_view details) {
    if (details.empty() || details == "null") return std::string(details);
    try {
        Json parsed = parse_json(details, "details");
        if (!json_is_object(parsed.get())) return "null";
        json_object_del(parsed.get(), "error");
        json_object_del(parsed.get(), "message");
        return dump_json(parsed.get());
    } catch (const Error &) {
        return "null";
    }
}

// Batches of finished runs (run_recorder.hpp): up to this many runs each, this many being
// written at once per worker. One: runs that finish during a commit wait for it and go in the
// next batch together, which costs less per run than more, smaller batches (README
// "Performance": measured with bench/runtime.sh and bench/llm.sh).
constexpr size_t kRunsPerRecord = 64;
constexpr size_t kRecordsInFlight = 1;

}  // namespace

Application::Application(const Config &config, const RunEnvironment &environment, uv_loop_t *loop, pg::Pool &pool,
                         WorkerMetrics &metrics, int worker_index, int worker_count, const std::string &openapi_json)
    : config_(config),
      environment_(environment),
      loop_(loop),
      pool_(pool),
      recorder_(pool, metrics, kRunsPerRecord, kRecordsInFlight),
      metrics_(metrics),
      worker_index_(worker_index),
      worker_count_(worker_count),
      openapi_json_(openapi_json) {
    trusted_proxies_ = CidrList::parse(config.trusted_proxies);
    pg::WorkspacePoolLimits limits;
    limits.max_open = static_cast<size_t>(config.workspace_pool_size);
    limits.global_cap = static_cast<size_t>(config.workspace_pool_global_cap);
    limits.idle_timeout_ms = static_cast<uint64_t>(config.workspace_pool_idle_ms);
    limits.lifetime_ms = static_cast<uint64_t>(config.workspace_pool_lifetime_ms);
    limits.statement_timeout_ms = static_cast<uint64_t>(config.db_step_timeout_ms);
    limits.queue_timeout_ms = static_cast<uint64_t>(config.db_queue_timeout_ms);
    workspace_pools_ = std::make_unique<pg::WorkspacePools>(
        loop, limits, [this](const std::string &workspace_id, std::function<void(pg::WorkspaceTarget)> done) {
            connect_workspace(workspace_id, std::move(done));
        });
    jwt_ = JwtSettings{config.runtime_jwt_secret, config.runtime_jwt_issuer, config.runtime_jwt_audience, 30};
    database_work_pool_ = std::make_unique<BlockingPool>(loop, static_cast<size_t>(config.database_work_threads),
                                                         static_cast<size_t>(config.database_work_queue));
}

Application::~Application() = default;

size_t Application::body_limit(const http::Request &request) const {
    RouteMatch match = match_route(request.method, request.path);
    if (match.route && match.route->max_body_bytes) return match.route->max_body_bytes;
    return static_cast<size_t>(config_.max_body_bytes);
}

http::Response Application::refusal(int status, const std::string &code, const std::string &message) const {
    http::Request empty;
    TraceContext trace = trace_context_of(empty);
    ErrorCode error = error_code_from_name(code).value_or(ErrorCode::BAD_REQUEST);
    http::Response response = error_response(error, message, "null", trace);
    response.status = status;  // 408 and 505 have no code of their own
    metrics_.record_request("refused", "", status, 0);
    if (log_enabled(LogLevel::info))
        log_line(LogLevel::info, "request refused",
                 {{"request_id", trace.request_id}, {"status", std::to_string(status), true}, {"error_code", code}});
    return response;
}

void Application::handle(http::Request &&request, http::Responder responder) {
    auto call = std::make_shared<Call>(
        Call{std::move(request), std::move(responder), {}, Clock::now(), {}, nullptr, {}, false, {}, {}, false, false, {}});
    call->trace = trace_context_of(call->request);
    const std::string &path = call->request.path;
    const std::string &method = call->request.method;
    bool reads = method == "GET" || method == "HEAD";

    if (path == "/health" || path == "/ready" || path == "/metrics" || path == "/openapi.json") {
        call->route_label = path;
        if (!reads) {
            http::Response response = error_response(ErrorCode::METHOD_NOT_ALLOWED, "use GET", "null", call->trace);
            response.with_header("Allow", "GET, HEAD");
            return finish(call, std::move(response));
        }
        if (path == "/health") return finish(call, success_response(200, "{\"status\":\"ok\"}", call->trace));
        if (path == "/metrics") {
            http::Response response;
            response.body =
                metrics_registry().render(http::HttpServer::global_open_connections().load(), worker_count_);
            response.with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                .with_header("X-Request-Id", call->trace.request_id);
            return finish(call, std::move(response));
        }
        if (path == "/openapi.json") {
            http::Response response;
            response.body = openapi_json_;
            response.with_header("Content-Type", "application/json")
                .with_header("X-Request-Id", call->trace.request_id);
            return finish(call, std::move(response));
        }
        // /ready: the database answers a statement through this worker's pool.
        pool_.run({pg::Statement{"select 1", {}}}, [this, call](pg::JobResult &&result) {
            if (result.outcome == pg::JobResult::Outcome::ok)
                finish(call, success_response(200, "{\"status\":\"ready\",\"database\":\"ok\"}", call->trace));
            else {
                // What the database said (hosts, roles) goes to the log, not to whoever asks.
                log_line(LogLevel::warn, "not ready", {{"request_id", call->trace.request_id}, {"error", result.message}});
                finish_error(call, ErrorCode::DB_UNAVAILABLE, "the database is not reachable");
            }
        });
        return;
    }

    if (path == "/runtime" || path.rfind("/runtime/", 0) == 0) return handle_runtime(call);
    if (path.rfind("/assets/", 0) == 0) return answer_asset(call);

    RouteMatch match = match_route(method, path);
    if (!match.route) {
        call->route_label = "unmatched";
        if (!match.allowed_methods.empty()) {
            std::string allow;
            for (const auto &name : match.allowed_methods) allow += (allow.empty() ? "" : ", ") + name;
            http::Response response = error_response(
                ErrorCode::METHOD_NOT_ALLOWED, method + " is not allowed here; allowed: " + allow, "null", call->trace);
            response.with_header("Allow", allow);
            return finish(call, std::move(response));
        }
        return finish_error(call, ErrorCode::NOT_FOUND, "no route for " + method + " " + utf8_prefix(path, 200));
    }
    call->route = match.route;
    call->route_label = match.route->operation;

    auto token = http::bearer_token(call->request);
    if (!token) return finish_error(call, ErrorCode::UNAUTHENTICATED, "an Authorization: Bearer API key is required");
    if (!looks_like_api_key(*token))
        return finish_error(call, ErrorCode::UNAUTHENTICATED, "the API key is missing, invalid, expired or revoked",
                            "{\"reason\":\"malformed_key\"}");
    call->operator_key = !config_.admin_key.empty() && secrets_equal(*token, config_.admin_key);
    if (!call->operator_key) call->key_hash = sha256_hex(*token);

    try {
        call->arguments = build_arguments(*match.route, match, call->request);
        static const Keyring kNoKeys;
        seal_secret_values(*match.route, call->arguments, environment_.keyring ? *environment_.keyring : kNoKeys);
    } catch (const Error &error) {
        return finish_error(call, error.code(), error.message(), error.details_json());
    }

    if (match.route->handler == Route::Handler::event_stream) return open_event_stream(call);
    auto dispatch = [this, call] {
        if (call->route->handler == Route::Handler::trial_run) return run_trial(call);
        if (call->route->handler == Route::Handler::database_operation) return run_database_operation(call);
        if (call->route->handler == Route::Handler::generation) return run_generation(call);
        run_call(call);
    };
    if (auto key = call->request.header("idempotency-key"); key && method == "POST") {
        call->idempotency_key = std::string(*key);
        if (match.route->handler == Route::Handler::sql_call) return run_idempotent_call(call);
        return claim_idempotency(call, [call, dispatch] {
            call->store_answer = true;
            dispatch();
        });
    }
    dispatch();
}

pg::Statement Application::actor_statement(const Call &call) const {
    if (call.operator_key) return pg::Statement{kActAsOperator, {}};
    return pg::Statement{kAuthenticate, {call.key_hash, std::string(required_scope(*call.route))}};
}

void Application::run_call(std::shared_ptr<Call> call) {
    std::vector<pg::Statement> statements;
    statements.push_back(actor_statement(*call));
    statements.push_back(pg::Statement{route_sql(*call->route), call->arguments});
    pool_.run(std::move(statements), [this, call](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return finish_database_error(call, result);
        if (!call->operator_key && result.values[0]) used_keys_.insert(*result.values[0]);
        finish(call, success_response(call->route->success_status, result.values[1].value_or("null"), call->trace));
    });
}

// Claim (own transaction, so a concurrent duplicate sees it) → call + stored response (one
// transaction) → on failure, release the claim so a retry runs again.
void Application::claim_idempotency(std::shared_ptr<Call> call, std::function<void()> claimed_then) {
    std::string request_hash = sha256_hex(call->request.method + " " + call->request.path + "\n" + call->request.query +
                                          "\n" + call->request.body);
    std::vector<pg::Statement> claim;
    claim.push_back(actor_statement(*call));
    claim.push_back(pg::Statement{"select flowgres.idempotency_claim($1, $2, $3)::text",
                                  {call->idempotency_key, std::string(call->route->operation), request_hash}});
    pool_.run(std::move(claim), [this, call, claimed_then = std::move(claimed_then)](pg::JobResult &&claimed) {
        if (claimed.outcome != pg::JobResult::Outcome::ok) return finish_database_error(call, claimed);
        Json state = parse_json(claimed.values[1].value_or("{}"), "claim");
        const char *claim_state = json_string_value(json_object_get(state.get(), "state"));
        if (claim_state && std::string_view(claim_state) == "replay") {
            int status = static_cast<int>(json_integer_value(json_object_get(state.get(), "status")));
            http::Response response = success_response(
                status ? status : 200, dump_json(json_object_get(state.get(), "response")), call->trace);
            response.with_header("Idempotent-Replayed", "true");
            return finish(call, std::move(response));
        }
        claimed_then();
    });
}

void Application::run_idempotent_call(std::shared_ptr<Call> call) {
    claim_idempotency(call, [this, call] {
        std::vector<pg::Statement> statements;
        statements.push_back(actor_statement(*call));
        SqlArguments arguments = {call->idempotency_key, std::to_string(call->route->success_status)};
        arguments.insert(arguments.end(), call->arguments.begin(), call->arguments.end());
        statements.push_back(pg::Statement{idempotent_sql(*call->route), std::move(arguments)});
        pool_.run(std::move(statements), [this, call](pg::JobResult &&result) {
            if (result.outcome == pg::JobResult::Outcome::ok) {
                if (!call->operator_key && result.values[0]) used_keys_.insert(*result.values[0]);
                return finish(call, success_response(call->route->success_status, result.values[1].value_or("null"),
                                                     call->trace));
            }
            auto failed = std::make_shared<pg::JobResult>(std::move(result));
            std::vector<pg::Statement> release;
            release.push_back(actor_statement(*call));
            release.push_back(pg::Statement{"select flowgres.idempotency_release($1)::text", {call->idempotency_key}});
            pool_.run(std::move(release),
                      [this, call, failed](pg::JobResult &&) { finish_database_error(call, *failed); });
        });
    });
}

void Application::finish_database_error(const std::shared_ptr<Call> &call, const pg::JobResult &result) {
    if (result.outcome == pg::JobResult::Outcome::unavailable) {
        log_line(LogLevel::warn, "database unavailable",
                 {{"request_id", call->trace.request_id}, {"error", result.message}});
        return finish_error(call, ErrorCode::DB_UNAVAILABLE, "the database is unreachable or busy; retry shortly");
    }
    DatabaseError error = map_database_error(result.sqlstate, result.message, result.detail);
    if (error.internal)
        log_line(LogLevel::error, "database error",
                 {{"request_id", call->trace.request_id},
                  {"route", call->route_label},
                  {"sqlstate", result.sqlstate},
                  {"error", result.message}});
    finish_error(call, error.code, error.message, error.details_json);
}

void Application::finish_error(const std::shared_ptr<Call> &call, ErrorCode code, std::string_view message,
                               std::string_view details) {
    std::string shown(message), shown_details(details);
    if (carries_internal_text(code) && !call->operator_key) {
        log_line(LogLevel::error, "request failed",
                 {{"request_id", call->trace.request_id},
                  {"route", call->route_label},
                  {"error_code", std::string(error_info(code).name)},
                  {"error", std::string(message)}});
        shown = std::string(error_info(code).summary) + " (the server log has the details under request id " +
                call->trace.request_id + ")";
        shown_details = without_error_text(details);
    }
    http::Response response = error_response(code, shown, shown_details, call->trace);
    if (code == ErrorCode::DB_UNAVAILABLE) response.with_header("Retry-After", "1");
    if (code == ErrorCode::UNAUTHENTICATED) response.with_header("WWW-Authenticate", "Bearer realm=\"flowgres\"");
    finish(call, std::move(response));
}

void Application::finish(const std::shared_ptr<Call> &call, http::Response response) {
    if (call->answered) return;
    if (call->store_answer) {
        // Stored before it goes out, so a retry after the answer replays it; a failure
        // releases the claim, so a retry runs again.
        call->store_answer = false;
        auto pending = std::make_shared<http::Response>(std::move(response));
        std::vector<pg::Statement> statements;
        statements.push_back(actor_statement(*call));
        if (pending->status >= 200 && pending->status < 300) {
            std::string data = "null";
            try {
                Json envelope = parse_json(pending->body, "response");
                if (const json_t *inner = json_object_get(envelope.get(), "data")) data = dump_json(inner);
            } catch (const Error &) {
            }
            statements.push_back(pg::Statement{"select flowgres.idempotency_complete($1, $2::integer, $3::jsonb)::text",
                                               {call->idempotency_key, std::to_string(pending->status), data}});
        } else {
            statements.push_back(pg::Statement{"select flowgres.idempotency_release($1)::text", {call->idempotency_key}});
        }
        pool_.run(std::move(statements), [this, call, pending](pg::JobResult &&) { finish(call, std::move(*pending)); });
        return;
    }
    call->answered = true;
    double seconds = std::chrono::duration<double>(Clock::now() - call->started).count();
    metrics_.record_request(call->route_label, call->request.method, response.status, seconds);
    if (config_.log_requests && log_enabled(LogLevel::info)) {
        std::string workspace_id;
        if (call->route)
            for (size_t i = 0; i < call->route->arguments.size() && i < call->arguments.size(); i++)
                if (std::string_view(call->route->arguments[i].name) == "workspace_id" && call->arguments[i])
                    workspace_id = *call->arguments[i];
        // Milliseconds with three decimals, from whole microseconds (no floating-point printf).
        auto micros = static_cast<long long>(seconds * 1e6);
        std::string duration = std::to_string(micros / 1000) + "." + std::to_string(1000 + micros % 1000).substr(1);
        log_line(LogLevel::info, "request",
                 {{"trace_id", call->trace.trace_id},
                  {"request_id", call->trace.request_id},
                  {"method", call->request.method},
                  {"route", call->route_label},
                  {"status", std::to_string(response.status), true},
                  {"duration_ms", duration, true},
                  {"workspace_id", workspace_id},
                  {"client", hash_ip(call->request.peer_address)}});
    }
    for (auto &[name, value] : call->headers) response.with_header(name, value);
    call->responder.send(response);
}

void Application::flush_key_usage(std::function<void()> done) {
    if (used_keys_.empty()) {
        if (done) done();
        return;
    }
    std::string ids = "[";
    for (const auto &id : used_keys_) ids += (ids.size() > 1 ? "," : "") + json_quote(id);
    ids += "]";
    used_keys_.clear();
    pool_.run({pg::Statement{"select flowgres.api_key_touch($1::jsonb)::text", {ids}}}, [done](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok)
            log_line(LogLevel::warn, "could not record API key use", {{"error", result.message}});
        if (done) done();
    });
}

void Application::start_background() {
    background_started_ = true;
    uv_timer_init(loop_, &touch_timer_);
    touch_timer_.data = this;
    auto touch_every = static_cast<uint64_t>(config_.api_key_touch_interval_ms);
    uv_timer_start(
        &touch_timer_, [](uv_timer_t *timer) { static_cast<Application *>(timer->data)->flush_key_usage(nullptr); },
        touch_every, touch_every);
    uv_timer_init(loop_, &purge_timer_);
    purge_timer_.data = this;
    if (worker_index_ == 0) {  // one worker purges for the whole process
        auto purge_every = static_cast<uint64_t>(config_.idempotency_purge_interval_ms);
        uv_timer_start(
            &purge_timer_,
            [](uv_timer_t *timer) {
                auto *self = static_cast<Application *>(timer->data);
                self->pool_.run({pg::Statement{"select flowgres.idempotency_purge()::text", {}}},
                                [](pg::JobResult &&result) {
                                    if (result.outcome == pg::JobResult::Outcome::ok)
                                        log_line(LogLevel::debug, "expired idempotency keys purged",
                                                 {{"count", result.values[0].value_or("0"), true}});
                                });
            },
            purge_every, purge_every);
    }
    // Queued runs: woken by NOTIFY on flowgres_executions, and by a one-second sweep in case a
    // notification was missed (a reconnect, another daemon's crash between claim and run).
    // Event streams: NOTIFY on flowgres_execution_events names an execution with new events.
    // Workspace databases: a rotated password or a restore drops this worker's pool of it.
    workspace_pools_->start();
    listener_ = std::make_unique<pg::Listener>(
        loop_, config_.database_url,
        std::vector<std::string>{"flowgres_executions", "flowgres_execution_events", "flowgres_workspace_databases"},
        [this](const std::string &channel, const std::string &payload) {
            if (channel == "flowgres_executions")
                claim_queued();
            else if (channel == "flowgres_workspace_databases")
                workspace_pools_->recheck_workspace(payload);
            else
                on_event_notification(payload);
        });
    listener_->start();
    uv_timer_init(loop_, &claim_timer_);
    claim_timer_.data = this;
    uv_timer_start(
        &claim_timer_,
        [](uv_timer_t *timer) {
            auto *application = static_cast<Application *>(timer->data);
            application->claim_queued();
            application->flush_shed_counts();
        },
        0, 1000);
    uv_timer_init(loop_, &backup_timer_);
    backup_timer_.data = this;
    if (worker_index_ == 0 && config_.backup_interval_s > 0) {
        auto check_every = static_cast<uint64_t>(std::min<int64_t>(config_.backup_interval_s, 60)) * 1000;
        uv_timer_start(
            &backup_timer_, [](uv_timer_t *timer) { static_cast<Application *>(timer->data)->back_up_due_databases(); },
            1000, check_every);  // soon after start-up too: a restart does not postpone what is due
    }
    uv_timer_init(loop_, &expiry_timer_);
    expiry_timer_.data = this;
    if (worker_index_ == 0) {
        auto sweep_every = static_cast<uint64_t>(config_.app_role_sweep_ms);
        uv_timer_start(
            &expiry_timer_, [](uv_timer_t *timer) { static_cast<Application *>(timer->data)->revoke_expired_roles(); },
            sweep_every, sweep_every);
    }
    uv_timer_init(loop_, &stream_timer_);
    stream_timer_.data = this;
    auto beat_every = static_cast<uint64_t>(config_.sse_heartbeat_ms);
    uv_timer_start(
        &stream_timer_, [](uv_timer_t *timer) { static_cast<Application *>(timer->data)->beat_event_streams(); },
        beat_every, beat_every);
}

void Application::stop_background(std::function<void()> done) {
    if (!background_started_) {
        done();
        return;
    }
    background_started_ = false;  // claims no more
    cancel_active_runs();         // recorded as failed (SHUTTING_DOWN) before the pool closes
    uv_close(reinterpret_cast<uv_handle_t *>(&touch_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&purge_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&claim_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&stream_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&backup_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&expiry_timer_), nullptr);
    end_event_streams();
    listener_->close([this, done = std::move(done)]() mutable {
        workspace_pools_->close([this, done = std::move(done)]() mutable {
            // Database work waiting is cancelled; what runs finishes (its claim's lease covers it).
            database_work_pool_->stop([this, done = std::move(done)]() mutable {
                flush_key_usage(std::move(done));  // the last uses are not lost on shutdown
            });
        });
    });
}

}  // namespace flowgres::daemon
