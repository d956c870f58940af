// ManagementApi (management_api.hpp): authentication, the call, idempotency.
#include "management_api.hpp"

#include "arguments.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "log.hpp"

namespace flowgres::daemon {

namespace {

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

}  // namespace

void ManagementApi::start() {
    started_ = true;
    uv_timer_init(worker_.loop, &touch_timer_);
    touch_timer_.data = this;
    auto touch_every = static_cast<uint64_t>(worker_.config.api_key_touch_interval_ms);
    uv_timer_start(
        &touch_timer_, [](uv_timer_t *timer) { static_cast<ManagementApi *>(timer->data)->worker_.flush_key_usage(nullptr); },
        touch_every, touch_every);
    uv_timer_init(worker_.loop, &purge_timer_);
    purge_timer_.data = this;
    if (worker_.worker_index == 0) {  // one worker purges for the whole process
        auto purge_every = static_cast<uint64_t>(worker_.config.idempotency_purge_interval_ms);
        uv_timer_start(
            &purge_timer_,
            [](uv_timer_t *timer) {
                auto *self = static_cast<ManagementApi *>(timer->data);
                self->worker_.pool.run({pg::Statement{"select flowgres.idempotency_purge()::text", {}}},
                                       [](pg::JobResult &&result) {
                                           if (result.outcome == pg::JobResult::Outcome::ok)
                                               log_line(LogLevel::debug, "expired idempotency keys purged",
                                                        {{"count", result.values[0].value_or("0"), true}});
                                       });
            },
            purge_every, purge_every);
    }
}

void ManagementApi::stop() {
    if (!started_) return;
    started_ = false;
    uv_close(reinterpret_cast<uv_handle_t *>(&touch_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&purge_timer_), nullptr);
}

void ManagementApi::handle(std::shared_ptr<Call> call) {
    const std::string &path = call->request.path;
    const std::string &method = call->request.method;
    RouteMatch match = match_route(method, path);
    if (!match.route) {
        call->route_label = "unmatched";
        if (!match.allowed_methods.empty()) {
            std::string allow;
            for (const auto &name : match.allowed_methods) allow += (allow.empty() ? "" : ", ") + name;
            http::Response response = error_response(
                ErrorCode::METHOD_NOT_ALLOWED, method + " is not allowed here; allowed: " + allow, "null", call->trace);
            response.with_header("Allow", allow);
            return worker_.finish(call, std::move(response));
        }
        return worker_.finish_error(call, ErrorCode::NOT_FOUND, "no route for " + method + " " + utf8_prefix(path, 200));
    }
    call->route = match.route;
    call->route_label = match.route->operation;

    auto token = http::bearer_token(call->request);
    if (!token) return worker_.finish_error(call, ErrorCode::UNAUTHENTICATED, "an Authorization: Bearer API key is required");
    if (!looks_like_api_key(*token))
        return worker_.finish_error(call, ErrorCode::UNAUTHENTICATED, "the API key is missing, invalid, expired or revoked",
                                    "{\"reason\":\"malformed_key\"}");
    call->operator_key = !worker_.config.admin_key.empty() && secrets_equal(*token, worker_.config.admin_key);
    if (!call->operator_key) call->key_hash = sha256_hex(*token);

    try {
        call->arguments = build_arguments(*match.route, match, call->request);
        static const Keyring kNoKeys;
        seal_secret_values(*match.route, call->arguments, worker_.environment.keyring ? *worker_.environment.keyring : kNoKeys);
    } catch (const Error &error) {
        return worker_.finish_error(call, error.code(), error.message(), error.details_json());
    }

    if (match.route->handler == Route::Handler::event_stream) return streams_.open(call);
    auto dispatch = [this, call] {
        if (call->route->handler == Route::Handler::trial_run) return runs_.run_trial(call);
        if (call->route->handler == Route::Handler::database_operation) return databases_.run_operation(call);
        if (call->route->handler == Route::Handler::generation) return generation_.run(call);
        if (call->route->handler == Route::Handler::domain_check) return domain_checks_.run(call);
        if (call->route->handler == Route::Handler::certificate) return certificates_.run(call);
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

void ManagementApi::run_call(std::shared_ptr<Call> call) {
    std::vector<pg::Statement> statements;
    statements.push_back(worker_.actor_statement(*call));
    statements.push_back(pg::Statement{route_sql(*call->route), call->arguments});
    worker_.pool.run(std::move(statements), [this, call](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(call, result);
        worker_.note_key_use(*call, result.values[0]);
        worker_.finish(call, success_response(call->route->success_status, result.values[1].value_or("null"), call->trace));
    });
}

// Claim (own transaction, so a concurrent duplicate sees it) → call + stored response (one
// transaction) → on failure, release the claim so a retry runs again.
void ManagementApi::claim_idempotency(std::shared_ptr<Call> call, std::function<void()> claimed_then) {
    std::string request_hash = sha256_hex(call->request.method + " " + call->request.path + "\n" + call->request.query +
                                          "\n" + call->request.body);
    std::vector<pg::Statement> claim;
    claim.push_back(worker_.actor_statement(*call));
    claim.push_back(pg::Statement{"select flowgres.idempotency_claim($1, $2, $3)::text",
                                  {call->idempotency_key, std::string(call->route->operation), request_hash}});
    worker_.pool.run(std::move(claim), [this, call, claimed_then = std::move(claimed_then)](pg::JobResult &&claimed) {
        if (claimed.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(call, claimed);
        Json state = parse_json(claimed.values[1].value_or("{}"), "claim");
        const char *claim_state = json_string_value(json_object_get(state.get(), "state"));
        if (claim_state && std::string_view(claim_state) == "replay") {
            int status = static_cast<int>(json_integer_value(json_object_get(state.get(), "status")));
            http::Response response = success_response(
                status ? status : 200, dump_json(json_object_get(state.get(), "response")), call->trace);
            response.with_header("Idempotent-Replayed", "true");
            return worker_.finish(call, std::move(response));
        }
        claimed_then();
    });
}

void ManagementApi::run_idempotent_call(std::shared_ptr<Call> call) {
    claim_idempotency(call, [this, call] {
        std::vector<pg::Statement> statements;
        statements.push_back(worker_.actor_statement(*call));
        SqlArguments arguments = {call->idempotency_key, std::to_string(call->route->success_status)};
        arguments.insert(arguments.end(), call->arguments.begin(), call->arguments.end());
        statements.push_back(pg::Statement{idempotent_sql(*call->route), std::move(arguments)});
        worker_.pool.run(std::move(statements), [this, call](pg::JobResult &&result) {
            if (result.outcome == pg::JobResult::Outcome::ok) {
                worker_.note_key_use(*call, result.values[0]);
                return worker_.finish(call, success_response(call->route->success_status, result.values[1].value_or("null"),
                                                             call->trace));
            }
            auto failed = std::make_shared<pg::JobResult>(std::move(result));
            std::vector<pg::Statement> release;
            release.push_back(worker_.actor_statement(*call));
            release.push_back(pg::Statement{"select flowgres.idempotency_release($1)::text", {call->idempotency_key}});
            worker_.pool.run(std::move(release),
                             [this, call, failed](pg::JobResult &&) { worker_.finish_database_error(call, *failed); });
        });
    });
}

}  // namespace flowgres::daemon
