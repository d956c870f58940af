// Application (application.hpp): the built-in endpoints, the routing to each concern, and
// the worker's start and stop.
#include "application.hpp"

#include "flowgres/domain_name.hpp"
#include "flowgres/json.hpp"
#include "forwarding.hpp"
#include "log.hpp"

namespace flowgres::daemon {

Application::Application(const Config &config, const RunEnvironment &environment, uv_loop_t *loop, pg::Pool &pool,
                         WorkerMetrics &metrics, int worker_index, int worker_count, const std::string &openapi_json)
    : worker_(config, environment, loop, pool, metrics, worker_index, worker_count),
      streams_(worker_),
      databases_(worker_),
      domain_checks_(worker_),
      certificates_(worker_),
      domain_tls_(worker_),
      preparation_(worker_),
      runs_(worker_, preparation_, databases_),
      runtime_(worker_, runs_, streams_),
      generation_(worker_, preparation_),
      management_(worker_, runs_, databases_, domain_checks_, certificates_, generation_, streams_),
      gateway_(std::make_unique<gateway::Gateway>(worker_)),
      openapi_json_(openapi_json),
      trusted_proxies_(CidrList::parse(config.trusted_proxies)),
      platform_hosts_(host_list(config.platform_host)) {}

// A plain HTTP request to a custom domain: 308 to the same address over HTTPS once the domain
// has its certificate (what the HTTPS listener would present, from the same cache), else the app
// over HTTP as before.
void Application::redirect_if_secured(std::shared_ptr<Call> call, const std::string &domain) {
    SSL_CTX *context = nullptr;
    switch (domain_tls_.peek(domain, &context)) {
        case http::CertificateSource::Found::certificate: {
            SSL_CTX_free(context);
            std::string port = worker_.config.tls_port == 443 ? "" : ":" + std::to_string(worker_.config.tls_port);
            http::Response response = error_response(ErrorCode::NOT_FOUND, "moved to HTTPS", "null", call->trace);
            response.status = 308;
            response.with_header("Location", "https://" + domain + port + call->request.target);
            return worker_.finish(call, std::move(response));
        }
        case http::CertificateSource::Found::unknown:
            return domain_tls_.load(domain, [this, call, domain] { redirect_if_secured(call, domain); });
        default:
            return runtime_.handle(call, domain);
    }
}

// The custom domain a request is for: its host when that is a domain name and not the
// platform's own (nor below it); "" otherwise.
std::string Application::custom_domain_of(const http::Request &request) const {
    std::string host = request_host(requested_host(
        request.peer_address,
        {request.header("host").value_or(""), request.header_list("forwarded"), request.header_list("x-forwarded-host")},
        trusted_proxies_));
    if (host.empty() || host == "localhost" || host.ends_with(".localhost")) return "";
    for (const std::string &platform : platform_hosts_)
        if (domain_within(host, platform)) return "";
    return host;
}

Application::~Application() = default;

size_t Application::body_limit(const http::Request &request) const {
    RouteMatch match = match_route(request.method, request.path);
    if (match.route && match.route->max_body_bytes) return match.route->max_body_bytes;
    return static_cast<size_t>(worker_.config.max_body_bytes);
}

http::Response Application::refusal(int status, const std::string &code, const std::string &message) const {
    http::Request empty;
    TraceContext trace = trace_context_of(empty);
    ErrorCode error = error_code_from_name(code).value_or(ErrorCode::BAD_REQUEST);
    http::Response response = error_response(error, message, "null", trace);
    response.status = status;  // 408 and 505 have no code of their own
    worker_.metrics.record_request("refused", "", status, 0);
    if (log_enabled(LogLevel::info))
        log_line(LogLevel::info, "request refused",
                 {{"request_id", trace.request_id}, {"status", std::to_string(status), true}, {"error_code", code}});
    return response;
}

void Application::handle(http::Request &&request, http::Responder responder) {
    auto call = std::make_shared<Call>(Call{std::move(request), std::move(responder), {}, Call::Clock::now(), {}, nullptr,
                                            {}, false, {}, {}, false, false, {}});
    call->trace = trace_context_of(call->request);
    const std::string &path = call->request.path;
    const std::string &method = call->request.method;
    bool reads = method == "GET" || method == "HEAD";

    if (path == "/health" || path == "/ready" || path == "/metrics" || path == "/openapi.json") {
        call->route_label = path;
        if (!reads) {
            http::Response response = error_response(ErrorCode::METHOD_NOT_ALLOWED, "use GET", "null", call->trace);
            response.with_header("Allow", "GET, HEAD");
            return worker_.finish(call, std::move(response));
        }
        if (path == "/health") return worker_.finish(call, success_response(200, "{\"status\":\"ok\"}", call->trace));
        if (path == "/metrics") {
            http::Response response;
            response.body =
                metrics_registry().render(http::HttpServer::global_open_connections().load(), worker_.worker_count);
            response.with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                .with_header("X-Request-Id", call->trace.request_id);
            return worker_.finish(call, std::move(response));
        }
        if (path == "/openapi.json") {
            http::Response response;
            response.body = openapi_json_;
            response.with_header("Content-Type", "application/json")
                .with_header("X-Request-Id", call->trace.request_id);
            return worker_.finish(call, std::move(response));
        }
        // /ready: the database answers a statement through this worker's pool.
        worker_.pool.run({pg::Statement{"select 1", {}}}, [this, call](pg::JobResult &&result) {
            if (result.outcome == pg::JobResult::Outcome::ok)
                worker_.finish(call, success_response(200, "{\"status\":\"ready\",\"database\":\"ok\"}", call->trace));
            else {
                // What the database said (hosts, roles) goes to the log, not to whoever asks.
                log_line(LogLevel::warn, "not ready", {{"request_id", call->trace.request_id}, {"error", result.message}});
                worker_.finish_error(call, ErrorCode::DB_UNAVAILABLE, "the database is not reachable");
            }
        });
        return;
    }

    if (path == "/runtime" || path.rfind("/runtime/", 0) == 0) return runtime_.handle(call);
    if (path.rfind("/v1/", 0) == 0) return gateway_->handle(call);
    if (path.rfind("/assets/", 0) == 0) return runtime_.answer_asset(call);
    // HTTP-01 answers of certificate orders, at every host (the CA asks the domain itself).
    if (constexpr std::string_view challenges = "/.well-known/acme-challenge/"; path.rfind(challenges, 0) == 0 && reads)
        return certificates_.answer_challenge(call, path.substr(challenges.size()));
    if (call->request.secure && worker_.config.hsts_max_age > 0)
        call->headers.emplace_back("Strict-Transport-Security", "max-age=" + std::to_string(worker_.config.hsts_max_age));
    // At a custom domain, every other address but the management API's is its app's.
    if (path.rfind("/api/", 0) != 0)
        if (std::string domain = custom_domain_of(call->request); !domain.empty()) {
            if (call->request.secure || worker_.config.tls_port == 0 || !worker_.config.https_redirect)
                return runtime_.handle(call, domain);
            return redirect_if_secured(call, domain);
        }
    management_.handle(call);
}


void Application::start_background() {
    background_started_ = true;
    management_.start();
    databases_.start();
    domain_checks_.start();
    certificates_.start();
    runs_.start();
    runtime_.start();
    streams_.start();
    if (worker_.config.tls_port != 0) domain_tls_.load_names_if_due();  // before the first handshake needs it
    // Queued runs: woken by NOTIFY on flowgres_executions, and by a one-second sweep in case a
    // notification was missed (a reconnect, another daemon's crash between claim and run).
    // Event streams: NOTIFY on flowgres_execution_events names an execution with new events.
    // Workspace databases: a rotated password or a restore drops this worker's pool of it.
    // Custom domains: any change drops the name from the HTTPS listener's certificate cache.
    listener_ = std::make_unique<pg::Listener>(
        worker_.loop, worker_.config.database_url,
        std::vector<std::string>{"flowgres_executions", "flowgres_execution_events", "flowgres_workspace_databases",
                                 "flowgres_domains"},
        [this](const std::string &channel, const std::string &payload) {
            if (channel == "flowgres_executions")
                runs_.claim_queued();
            else if (channel == "flowgres_domains") {
                forget_domain_tls(payload);
                // Lost notifications: the list of names is read again now, not at a handshake.
                if (payload.empty() && worker_.config.tls_port != 0) domain_tls_.load_names_if_due();
            }
            else if (channel == "flowgres_workspace_databases")
                databases_.recheck(payload);
            else
                streams_.on_notification(payload);
        });
    listener_->start();
}

void Application::end_event_streams() { streams_.end_all(); }

void Application::stop_background(std::function<void()> done) {
    if (!background_started_) {
        done();
        return;
    }
    background_started_ = false;
    runs_.stop();  // runs going on are recorded as failed (SHUTTING_DOWN) before the pool closes
    management_.stop();
    runtime_.stop();
    streams_.stop();
    certificates_.stop();
    listener_->close([this, done = std::move(done)]() mutable {
        databases_.stop([this, done = std::move(done)]() mutable {
            domain_checks_.stop([this, done = std::move(done)]() mutable {
                worker_.flush_key_usage(std::move(done));  // the last uses are not lost on shutdown
            });
        });
    });
}

}  // namespace flowgres::daemon
