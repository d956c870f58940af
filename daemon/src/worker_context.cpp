// WorkerContext (worker_context.hpp): how every concern answers a request, and the API keys'
// last uses, written in batches.
#include "worker_context.hpp"

#include <unistd.h>

#include "flowgres/json.hpp"
#include "log.hpp"

namespace flowgres::daemon {

namespace {

constexpr const char *kAuthenticate = "select flowgres.api_key_authenticate($1, $2)";

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

llm::CallLimits llm_limits_of(const Config &config) {
    llm::CallLimits limits;
    limits.connect_timeout_ms = static_cast<uint64_t>(config.llm_connect_timeout_ms);
    limits.first_token_timeout_ms = static_cast<uint64_t>(config.llm_first_token_timeout_ms);
    limits.idle_timeout_ms = static_cast<uint64_t>(config.llm_idle_timeout_ms);
    limits.total_timeout_ms = static_cast<uint64_t>(config.llm_total_timeout_ms);
    limits.max_attempts = static_cast<int>(config.llm_max_attempts);
    limits.max_backoff_ms = static_cast<uint64_t>(config.llm_max_backoff_ms);
    return limits;
}

}  // namespace

const std::string &daemon_name() {
    static const std::string name = [] {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        return std::string(host) + ":" + std::to_string(getpid());
    }();
    return name;
}

WorkerContext::WorkerContext(const Config &config, const RunEnvironment &environment, uv_loop_t *loop, pg::Pool &pool,
                             WorkerMetrics &metrics, int worker_index, int worker_count)
    : config(config),
      environment(environment),
      loop(loop),
      pool(pool),
      metrics(metrics),
      worker_index(worker_index),
      worker_count(worker_count),
      llm_limits(llm_limits_of(config)) {}

pg::Statement WorkerContext::actor_statement(const Call &call) const {
    if (call.operator_key) return pg::Statement{kActAsOperator, {}};
    return pg::Statement{kAuthenticate, {call.key_hash, std::string(required_scope(*call.route))}};
}

void WorkerContext::finish_database_error(const std::shared_ptr<Call> &call, const pg::JobResult &result) {
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

void WorkerContext::finish_error(const std::shared_ptr<Call> &call, ErrorCode code, std::string_view message,
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

void WorkerContext::finish(const std::shared_ptr<Call> &call, http::Response response) {
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
        pool.run(std::move(statements), [this, call, pending](pg::JobResult &&) { finish(call, std::move(*pending)); });
        return;
    }
    call->answered = true;
    double seconds = std::chrono::duration<double>(Call::Clock::now() - call->started).count();
    metrics.record_request(call->route_label, call->request.method, response.status, seconds);
    if (config.log_requests && log_enabled(LogLevel::info)) {
        std::string_view workspace_id;
        if (call->route)
            for (size_t i = 0; i < call->route->arguments.size() && i < call->arguments.size(); i++)
                if (std::string_view(call->route->arguments[i].name) == "workspace_id" && call->arguments[i])
                    workspace_id = *call->arguments[i];
        LogLine(LogLevel::info, "request")
            .text("trace_id", call->trace.trace_id)
            .text("request_id", call->trace.request_id)
            .text("method", call->request.method)
            .text("route", call->route_label)
            .number("status", response.status)
            .thousandths("duration_ms", static_cast<long long>(seconds * 1e6))
            .text("workspace_id", workspace_id)
            .text("client", hash_ip(call->request.peer_address));
    }
    for (auto &[name, value] : call->headers) response.with_header(name, value);
    call->responder.send(response);
}

void WorkerContext::note_stream_opened(const std::shared_ptr<Call> &call, std::string_view what) {
    call->answered = true;
    double seconds = std::chrono::duration<double>(Call::Clock::now() - call->started).count();
    metrics.record_request(call->route_label, call->request.method, 200, seconds);
    if (config.log_requests && log_enabled(LogLevel::info))
        LogLine(LogLevel::info, what)
            .text("trace_id", call->trace.trace_id)
            .text("request_id", call->trace.request_id)
            .text("route", call->route_label)
            .number("status", 200)
            .thousandths("duration_ms", static_cast<long long>(seconds * 1e6))
            .text("client", hash_ip(call->request.peer_address));
}

void WorkerContext::flush_key_usage(std::function<void()> done) {
    if (used_keys_.empty()) {
        if (done) done();
        return;
    }
    std::string ids = "[";
    for (const auto &id : used_keys_) ids += (ids.size() > 1 ? "," : "") + json_quote(id);
    ids += "]";
    used_keys_.clear();
    pool.run({pg::Statement{"select flowgres.api_key_touch($1::jsonb)::text", {ids}}}, [done](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok)
            log_line(LogLevel::warn, "could not record API key use", {{"error", result.message}});
        if (done) done();
    });
}

void WorkerContext::note_key_use(const Call &call, const std::optional<std::string> &key_id) {
    if (!call.operator_key && key_id) used_keys_.insert(*key_id);
}

}  // namespace flowgres::daemon
