// The public runtime (README "Public runtime"): visitors reach published apps at
//   GET  /runtime/{workspace}[/{app}]          the entry: the app's public description, session
//   GET  /runtime/{workspace}[/{app}]/schema   the UI schema, input mapping, start inputs;
//                                              ?cache=1: cacheable by anyone (public apps)
//   POST /runtime/{workspace}[/{app}]          execute: {"inputs": {…}}; ?async=true → 202
//   GET  /runtime/{workspace}[/{app}]/executions/{id}[/events]
//                                              the visitor's own run (its session or user),
//                                              and its progress as Server-Sent Events
//   OPTIONS on any of them                     CORS preflight from the app's allowed_origins
// without an API key. Each request costs one call into the extension, flowgres.runtime_admit,
// which decides it (see runtime_admit.cpp); the daemon adds what only it knows: the client's
// address (the socket peer, or the forwarding chain from trusted proxies), the signed-in
// visitor (a verified HS256 JWT), and then runs an admitted execution on this loop. Executes
// past max_in_flight on this worker are shed with 503 OVERLOADED before the database is asked.
// Answers carry X-RateLimit-Limit / -Remaining / -Reset (epoch seconds), Retry-After on 429
// (RATE_LIMITED, QUOTA_EXCEEDED) and 503 (OVERLOADED),
// and X-App-Session-Id, which the visitor sends back to keep its session.
#include <chrono>

#include "runtime.hpp"

#include <algorithm>
#include "executor/http_client.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/origins.hpp"
#include "flowgres/template.hpp"
#include "log.hpp"

namespace flowgres::daemon {

namespace {
// Admissions (admission_batches.hpp): up to this many per statement, this many statements
// being decided at once per worker.
constexpr size_t kAdmissionsPerBatch = 32;
constexpr size_t kAdmissionBatchesInFlight = 1;

// A browser's navigation: Accept names text/html (API clients send */* or application/json).
bool wants_html(const http::Request &request) {
    auto accept = request.header("accept");
    return accept && accept->find("text/html") != std::string_view::npos;
}

int64_t epoch_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

namespace {
// "GET, HEAD, POST, OPTIONS": what an address takes, from the route table's methods there.
std::string allow_header(const std::vector<std::string> &methods) {
    bool get = std::find(methods.begin(), methods.end(), "GET") != methods.end();
    bool post = std::find(methods.begin(), methods.end(), "POST") != methods.end();
    return std::string(get ? "GET, HEAD, " : "") + (post ? "POST, " : "") + "OPTIONS";
}
}  // namespace

Runtime::Runtime(WorkerContext &worker, Runs &runs, EventStreams &streams)
    : worker_(worker),
      runs_(runs),
      streams_(streams),
      admission_batches_(worker.pool, worker.metrics, kAdmissionsPerBatch, kAdmissionBatchesInFlight),
      trusted_proxies_(CidrList::parse(worker.config.trusted_proxies)),
      jwt_{worker.config.runtime_jwt_secret, worker.config.runtime_jwt_issuer, worker.config.runtime_jwt_audience, 30} {}

void Runtime::start() {
    started_ = true;
    uv_timer_init(worker_.loop, &shed_timer_);
    shed_timer_.data = this;
    uv_timer_start(
        &shed_timer_, [](uv_timer_t *timer) { static_cast<Runtime *>(timer->data)->flush_shed_counts(); }, 1000, 1000);
}

void Runtime::stop() {
    if (!started_) return;
    started_ = false;
    uv_close(reinterpret_cast<uv_handle_t *>(&shed_timer_), nullptr);
}

void Runtime::handle(std::shared_ptr<Call> call, const std::string &domain) {
    const http::Request &request = call->request;
    call->route_label = "runtime";
    auto not_found = [&] {
        worker_.finish_error(call, ErrorCode::NOT_FOUND, "no route for " + request.method + " " + utf8_prefix(request.path, 200));
    };
    // The route table's runtime routes (router.cpp) name the parts of the address. A preflight
    // asks about the GET or POST that follows: every runtime address has a GET.
    // A trailing slash names the same address (/runtime/ws/app/ is the app's page).
    std::string_view path = request.path;
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    // At a custom domain the app's addresses are the same below its root (/ is the entry,
    // /schema, /embed, /executions/…): matched as the slugs' addresses, the domain named instead.
    std::string domain_path;
    if (!domain.empty()) {
        domain_path = "/runtime/-/-" + std::string(path == "/" ? "" : path);
        path = domain_path;
    }
    bool preflight = request.method == "OPTIONS";
    RouteMatch match = match_route(request.method, path);
    std::vector<std::string> allowed = std::move(match.allowed_methods);
    if (preflight && !allowed.empty()) match = match_route("GET", path);
    if (!match.route || match.route->handler != Route::Handler::runtime) {
        if (allowed.empty()) return not_found();
        http::Response response =
            error_response(ErrorCode::METHOD_NOT_ALLOWED, request.method + " is not allowed here", "null", call->trace);
        response.with_header("Allow", allow_header(allowed));
        return worker_.finish(call, std::move(response));
    }
    std::string workspace, app, execution_id;
    for (const auto &[name, value] : match.path_parameters)
        (name == "workspace" ? workspace : name == "app" ? app : execution_id) = value;
    std::string_view pattern = match.route->pattern;
    bool events = pattern.ends_with("/events");
    if (!execution_id.empty() && !is_uuid(execution_id))
        return worker_.finish_error(call, ErrorCode::EXECUTION_NOT_FOUND, "no such execution of yours");
    std::string suffix = !execution_id.empty()        ? "/executions/" + execution_id + (events ? "/events" : "")
                         : pattern.ends_with("/schema") ? "/schema"
                         : pattern.ends_with("/embed")  ? "/embed"
                                                        : "";
    for (const std::string *slug : {&workspace, &app})
        if (domain.empty() && !(slug == &app && app.empty()) && !has_slug_characters(*slug))
            return worker_.finish_error(call, ErrorCode::RUNTIME_APP_NOT_FOUND, "no app is published at this address");

    std::string action = preflight                 ? "preflight"
                         : !execution_id.empty()   ? "execution"
                         : suffix == "/schema"     ? "schema"
                         : request.method == "POST" ? "execute"
                                                    : "entry";
    if (preflight && !request.header("origin")) {
        http::Response response;
        response.status = 204;
        response.with_header("Allow", allow_header(allowed));
        return worker_.finish(call, std::move(response));
    }
    if (request.method == "POST" && request.header("idempotency-key")) {
        // Keys are kept per signed-in user of the management API; a visitor has none to keep
        // them under, so the header is refused rather than silently ignored.
        call->route_label = "runtime_" + action;
        return worker_.finish_error(call, ErrorCode::VALIDATION_FAILED,
                                    "Idempotency-Key is not taken on the public runtime: a retried run is a new run",
                                    R"({"problems":[{"field":"Idempotency-Key","message":"is not taken on the public runtime"}]})");
    }
    if (action == "execute" && admissions_ + runs_.visitor_runs() >= worker_.config.max_in_flight) {
        // Shed before the database is asked: that is what overload cannot afford. At a custom
        // domain the slugs are not known here: it is counted by its name ("@" marks it).
        if (domain.empty())
            shed_counts_[{workspace, app}]++;
        else
            shed_counts_[{"@" + domain, ""}]++;
        call->headers.emplace_back("Retry-After", "1");
        call->route_label = "runtime_execute";
        return worker_.finish_error(call, ErrorCode::OVERLOADED, "the server is busy: retry in a second",
                                    R"({"retry_after_seconds":1})");
    }
    call->route_label = "runtime_" + action;

    Json admission(new_json_object());
    json_object_set_new(admission.get(), "action", json_string(action.c_str()));
    if (!domain.empty()) {
        json_object_set_new(admission.get(), "domain", json_string(domain.c_str()));
    } else {
        json_object_set_new(admission.get(), "workspace", json_string(workspace.c_str()));
        json_object_set_new(admission.get(), "app", app.empty() ? json_null() : json_string(app.c_str()));
    }
    if (!execution_id.empty()) json_object_set_new(admission.get(), "execution_id", json_string(execution_id.c_str()));
    // Proxies that add their own line instead of appending to the client's: every line counts.
    std::string forwarded = request.header_list("forwarded"), forwarded_for = request.header_list("x-forwarded-for");
    std::string client = client_address(request.peer_address, {forwarded, forwarded_for}, trusted_proxies_);
    json_object_set_new(admission.get(), "ip", json_string(client.c_str()));
    auto text_header = [&](const char *header, const char *member, size_t max) {
        auto value = request.header(header);
        if (value && value->size() <= max && is_valid_utf8(*value))
            json_object_set_new(admission.get(), member, json_stringn(value->data(), value->size()));
    };
    text_header("user-agent", "user_agent", 1024);
    text_header("origin", "origin", 512);
    text_header("x-app-session-id", "session_id", 64);
    if (request.header("authorization")) {
        // A signed-in visitor: the identity provider's JWT as a Bearer token (anything else in
        // the header fails the check, it is not taken for anonymous).
        std::string token = http::bearer_token(request).value_or("");
        JwtCheck check = verify_jwt(token, jwt_, epoch_seconds());
        if (!check.ok) return worker_.finish_error(call, ErrorCode::AUTH_REQUIRED, "sign-in failed: " + check.error);
        json_object_set_new(admission.get(), "user", json_string(check.subject.c_str()));
        json_object_set_new(admission.get(), "user_workspace", json_string(check.workspace.c_str()));
    }
    bool async = false;
    if (action == "execute") {
        async = http::asks_async(request);
        Json body;
        try {
            body = parse_json(request.body.empty() ? "{}" : request.body, "body");
        } catch (const Error &error) {
            return worker_.finish_error(call, error.code(), error.message(), error.details_json());
        }
        if (!json_is_object(body.get()))
            return worker_.finish_error(call, ErrorCode::VALIDATION_FAILED, "the body must be a JSON object",
                                        R"({"problems":[{"field":"body","message":"must be a JSON object"}]})");
        json_t *inputs = json_object_get(body.get(), "inputs");
        if (inputs && !json_is_object(inputs))
            return worker_.finish_error(call, ErrorCode::VALIDATION_FAILED, "inputs must be a JSON object",
                                        R"({"problems":[{"field":"inputs","message":"must be a JSON object"}]})");
        if (inputs) json_object_set(admission.get(), "inputs", inputs);
        json_object_set_new(admission.get(), "claimed_by", json_string(daemon_name().c_str()));
        // The caller waits for the outcome and nobody can stream the run meanwhile: its row can
        // wait for the end, when it is written once (admission decides).
        if (!async) json_object_set_new(admission.get(), "defer", json_true());
        // A CAPTCHA token (header, or captcha_token in the body) goes to the provider only if
        // admission asks for one: after the rate limits, inside max_in_flight (admit()).
        std::string token(request.header("x-app-captcha-token").value_or(""));
        if (const char *in_body = json_string_value(json_object_get(body.get(), "captcha_token")))
            if (token.empty()) token = in_body;
        if (!token.empty()) json_object_set_new(admission.get(), "captcha", json_string("pending"));
        return admit(call, std::move(admission), action, suffix, async, std::move(token));
    }
    admit(call, std::move(admission), action, suffix, async);
}

void Runtime::admit(std::shared_ptr<Call> call, Json admission, const std::string &action, const std::string &suffix,
                    bool async, std::string captcha_token) {
    // What this worker keeps of the app's last admitted run is not sent again.
    std::string held_key;
    std::shared_ptr<const HeldForRuns> held;
    if (action == "execute") {
        const char *app = json_string_value(json_object_get(admission.get(), "app"));
        const char *domain = json_string_value(json_object_get(admission.get(), "domain"));
        held_key = domain ? std::string("@") + domain
                          : std::string(json_string_value(json_object_get(admission.get(), "workspace"))) + "/" + (app ? app : "");
        held = runs_.held_for(held_key);
        if (held && held->workflow)
            json_object_set_new(admission.get(), "have_version", json_string(held->version_id.c_str()));
        if (held && held->preparation)
            json_object_set_new(admission.get(), "have_preparation", json_string(held->preparation_key.c_str()));
    }
    std::string request = dump_json(admission.get());
    if (action == "execute") admissions_++;
    size_t headers_before = call->headers.size();
    auto kept = std::make_shared<Json>(std::move(admission));
    admission_batches_.admit(std::move(request), [this, call, action, suffix, async, kept, headers_before, held_key, held,
                                                  captcha_token = std::move(captcha_token)](pg::JobResult &&failure,
                                                                                            Json decision) {
        if (action == "execute") admissions_--;
        if (!decision) return worker_.finish_database_error(call, failure);
        const char *refusal = json_string_value(json_object_get(json_object_get(decision.get(), "error"), "error_code"));
        if (!captcha_token.empty() && refusal && std::string_view(refusal) == "CAPTCHA_REQUIRED") {
            // The request passed everything up to the CAPTCHA, its rate limits counted: now the
            // provider, then a second round that counts nothing again, in the session made.
            json_t *round = kept->get();
            json_object_set_new(round, "rate_counted", json_true());
            if (const char *session = json_string_value(json_object_get(json_object_get(decision.get(), "session"), "id")))
                json_object_set_new(round, "session_id", json_string(session));
            admissions_++;
            return verify_captcha(captcha_token, json_string_value(json_object_get(round, "ip")),
                                  [this, call, kept, action, suffix, async, headers_before](bool passed) {
                                      admissions_--;
                                      json_object_set_new(kept->get(), "captcha", json_string(passed ? "passed" : "failed"));
                                      call->headers.resize(headers_before);
                                      admit(call, std::move(*kept), action, suffix, async);
                                  });
        }
        // Cross-origin callers may read the answer once their origin passed the app's list.
        auto origin = call->request.header("origin");
        if (origin && json_is_true(json_object_get(decision.get(), "origin_allowed"))) {
            call->headers.emplace_back("Access-Control-Allow-Origin", std::string(*origin));
            call->headers.emplace_back("Vary", "Origin");
            call->headers.emplace_back("Access-Control-Expose-Headers",
                                       "X-App-Session-Id, X-RateLimit-Limit, X-RateLimit-Remaining, "
                                       "X-RateLimit-Reset, Retry-After, X-Request-Id");
        }
        const json_t *rate = json_object_get(decision.get(), "rate_limit");
        if (json_is_object(rate)) {
            call->headers.emplace_back("X-RateLimit-Limit",
                                       std::to_string(json_integer_value(json_object_get(rate, "limit"))));
            call->headers.emplace_back("X-RateLimit-Remaining",
                                       std::to_string(json_integer_value(json_object_get(rate, "remaining"))));
            call->headers.emplace_back("X-RateLimit-Reset",
                                       std::to_string(json_integer_value(json_object_get(rate, "reset_at"))));
        }
        const json_t *session = json_object_get(decision.get(), "session");
        if (const char *session_id = json_string_value(json_object_get(session, "id")))
            call->headers.emplace_back("X-App-Session-Id", session_id);
        std::string verdict = json_string_value(json_object_get(decision.get(), "decision"));
        int status = static_cast<int>(json_integer_value(json_object_get(decision.get(), "status")));

        if (verdict == "redirect") {
            const json_t *location = json_object_get(decision.get(), "location");
            std::string target = "/runtime/" + std::string(json_string_value(json_object_get(location, "workspace")));
            if (const char *app = json_string_value(json_object_get(location, "app"))) target += "/" + std::string(app);
            target += suffix;
            if (!call->request.query.empty()) target += "?" + call->request.query;
            http::Response response = error_response(ErrorCode::NOT_FOUND, "moved to " + target, "null", call->trace);
            response.status = 301;
            response.with_header("Location", target);
            return worker_.finish(call, std::move(response));
        }
        const json_t *error = json_object_get(decision.get(), "error");
        // Rate limits, quotas (the next month) and load shedding say when to come back.
        const json_t *retry_after = json_object_get(json_object_get(error, "details"), "retry_after_seconds");
        if (verdict != "allow" && json_is_integer(retry_after))
            call->headers.emplace_back("Retry-After", std::to_string(json_integer_value(retry_after)));
        // Browsers asking for the entry get the page, refusals included (with their status).
        if (action == "entry" && (suffix == "/embed" || wants_html(call->request)))
            return answer_page(call, decision, suffix == "/embed");
        if (verdict != "allow") {
            const char *name = json_string_value(json_object_get(error, "error_code"));
            ErrorCode code = error_code_from_name(name ? name : "").value_or(ErrorCode::INTERNAL_ERROR);
            http::Response response = error_response(code, json_string_value(json_object_get(error, "message")),
                                                     dump_json(json_object_get(error, "details")), call->trace);
            response.status = status;
            return worker_.finish(call, std::move(response));
        }
        if (action == "preflight") {
            http::Response response;
            response.status = 204;
            response.with_header("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS")
                .with_header("Access-Control-Allow-Headers",
                             "Content-Type, Authorization, X-App-Session-Id, X-App-Captcha-Token, Last-Event-ID")
                .with_header("Access-Control-Max-Age", "600");
            return worker_.finish(call, std::move(response));
        }
        if (action == "execution") {
            if (suffix.size() < 7 || suffix.substr(suffix.size() - 7) != "/events")
                return worker_.finish(call, success_response(200, runtime_view(json_object_get(decision.get(), "execution")),
                                                             call->trace));
            return streams_.open_for_visitor(call, json_string_value(json_object_get(json_object_get(decision.get(), "execution"), "id")));
        }
        if (action == "schema") return answer_schema(call, decision);
        if (action != "execute") {
            Json data(new_json_object());
            for (const char *member : {"app", "session", "version_id"})
                if (json_t *value = json_object_get(decision.get(), member)) json_object_set(data.get(), member, value);
            return worker_.finish(call, success_response(200, dump_json(data.get()), call->trace));
        }
        Json execution(json_incref(json_object_get(decision.get(), "execution")));
        if (async) {
            Json accepted(
                json_pack("{s:O, s:s}", "execution_id", json_object_get(execution.get(), "id"), "status", "running"));
            worker_.finish(call, success_response(202, dump_json(accepted.get()), call->trace));
            return runs_.launch(std::move(execution), nullptr, true, held_key, held);
        }
        // Nobody waits for a run whose caller left during admission: it is recorded as failed,
        // never started. A run already going when its caller leaves finishes and is recorded.
        if (!call->responder.connected()) return runs_.record_unstarted(execution, ErrorCode::CLIENT_GONE);
        runs_.launch(std::move(execution), call, true, held_key, held);
    });
}

// The schema. With ?cache=1 on a public_anonymous app it is the same for every visitor: no
// session or rate-limit headers, an ETag naming the (immutable) version, Cache-Control for
// shared caches with stale-while-revalidate, and 304 when If-None-Match already has it.
void Runtime::answer_schema(const std::shared_ptr<Call> &call, const Json &decision) {
    auto asked = http::query_value(call->request, "cache");
    bool cache = asked == "1" || asked == "true";
    const char *mode = json_string_value(json_object_get(json_object_get(decision.get(), "app"), "access_mode"));
    cache = cache && mode && std::string_view(mode) == "public_anonymous";
    Json data(new_json_object());
    for (const char *member : {"app", "session", "version_id"})
        if (json_t *value = json_object_get(decision.get(), member)) json_object_set(data.get(), member, value);
    json_object_update(data.get(), json_object_get(decision.get(), "schema"));
    if (!cache) return worker_.finish(call, success_response(200, dump_json(data.get()), call->trace));

    json_object_del(data.get(), "session");
    std::erase_if(call->headers, [](const auto &header) {
        return header.first == "X-App-Session-Id" || header.first.rfind("X-RateLimit-", 0) == 0;
    });
    std::string etag = "\"" + std::string(json_string_value(json_object_get(decision.get(), "version_id"))) + "\"";
    call->headers.emplace_back("ETag", etag);
    call->headers.emplace_back("Cache-Control", "public, max-age=60, stale-while-revalidate=600");
    std::string_view wanted = call->request.header("if-none-match").value_or("");
    if (wanted == "*" || wanted.find(etag) != std::string_view::npos) {
        http::Response not_modified;
        not_modified.status = 304;
        return worker_.finish(call, std::move(not_modified));
    }
    worker_.finish(call, success_response(200, dump_json(data.get()), call->trace));
}

// The page. On a refusal the boot data carries the error (the script says it in words) and
// nothing of the app but where to sign in: a private app's name is not for strangers. The
// session goes into the boot data (the script cannot read this answer's headers), so the
// page is never cached. Embedding is allowed from the app's allowed_origins (none listed:
// this site only); the page itself is never framed.
void Runtime::answer_page(const std::shared_ptr<Call> &call, const Json &decision, bool embed) {
    bool allowed = std::string_view(json_string_value(json_object_get(decision.get(), "decision"))) == "allow";
    const json_t *app = json_object_get(decision.get(), "app");
    const json_t *page = json_object_get(app, "page");
    const json_t *error = json_object_get(decision.get(), "error");

    // Where the script finds the app: this path without a trailing slash or /embed.
    std::string base = call->request.path;
    while (!base.empty() && base.back() == '/') base.pop_back();  // a custom domain's root: ""
    if (embed) base.resize(base.size() - std::string_view("/embed").size());
    Json boot(new_json_object());
    json_object_set_new(boot.get(), "base", json_string(base.c_str()));
    json_object_set_new(boot.get(), "embed", json_boolean(embed));
    if (allowed) {
        json_object_set(boot.get(), "app", const_cast<json_t *>(app));
    } else {
        Json visible(new_json_object());
        if (json_t *sign_in = json_object_get(json_object_get(page, "branding"), "sign_in_url"))
            json_object_set_new(visible.get(), "page", json_pack("{s:{s:O}}", "branding", "sign_in_url", sign_in));
        json_object_set(boot.get(), "app", visible.get());
        json_t *details = json_object_get(error, "details");
        json_object_set_new(boot.get(), "error",
                            json_pack("{s:O, s:O, s:O}", "code", json_object_get(error, "error_code"), "message",
                                      json_object_get(error, "message"), "details", details ? details : json_null()));
    }
    if (const json_t *session = json_object_get(decision.get(), "session"); json_is_object(session))
        json_object_set(boot.get(), "session", json_object_get(session, "id"));

    PageFill fill;
    fill.embed = embed;
    fill.boot_json = dump_json(boot.get());
    const json_t *seo = json_object_get(page, "seo");
    const json_t *branding = json_object_get(page, "branding");
    auto text = [](const json_t *object, const char *member) {
        const char *value = json_string_value(json_object_get(object, member));
        return value ? std::string(value) : std::string();
    };
    if (allowed) {
        fill.title = text(seo, "title");
        if (fill.title.empty()) fill.title = text(branding, "title");
        if (fill.title.empty()) fill.title = text(app, "name");
        fill.description = text(seo, "description");
        if (fill.description.empty()) fill.description = text(app, "description");
        fill.image_url = text(seo, "image_url");
        if (std::string lang = text(seo, "lang"); !lang.empty()) fill.lang = lang;
        fill.noindex = json_is_true(json_object_get(seo, "noindex")) || embed;
    } else {
        fill.title = json_string_value(json_object_get(error, "message"));
        fill.noindex = true;
    }

    std::string ancestors = embed ? frame_ancestors(json_object_get(decision.get(), "allowed_origins")) : "'none'";
    http::Response response;
    response.status = allowed ? 200 : static_cast<int>(json_integer_value(json_object_get(decision.get(), "status")));
    response.body = worker_.environment.web->render_page(fill);
    response.with_header("Content-Type", "text/html; charset=utf-8")
        .with_header("Content-Security-Policy",
                     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
                     "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors " +
                         ancestors + "; require-trusted-types-for 'script'; trusted-types 'none'")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "strict-origin-when-cross-origin")
        .with_header("Cache-Control", "no-store")
        .with_header("X-Request-Id", call->trace.request_id);
    if (!embed) response.with_header("X-Frame-Options", "DENY");
    worker_.finish(call, std::move(response));
}

// /assets/{name}: the page's script and style, from memory, revalidated by ETag.
void Runtime::answer_asset(const std::shared_ptr<Call> &call) {
    const http::Request &request = call->request;
    call->route_label = "/assets";
    if (request.method != "GET" && request.method != "HEAD") {
        http::Response response = error_response(ErrorCode::METHOD_NOT_ALLOWED, "use GET", "null", call->trace);
        response.with_header("Allow", "GET, HEAD");
        return worker_.finish(call, std::move(response));
    }
    const WebAsset *asset = worker_.environment.web->find(std::string_view(request.path).substr(std::string_view("/assets/").size()));
    if (!asset) return worker_.finish_error(call, ErrorCode::NOT_FOUND, "no such file");
    http::Response response;
    response.with_header("ETag", asset->etag)
        .with_header("Cache-Control", "public, max-age=300")
        .with_header("X-Content-Type-Options", "nosniff");
    std::string_view wanted = request.header("if-none-match").value_or("");
    if (wanted.find(asset->etag) != std::string_view::npos) {
        response.status = 304;
        return worker_.finish(call, std::move(response));
    }
    response.body = asset->body;
    response.with_header("Content-Type", asset->content_type);
    worker_.finish(call, std::move(response));
}

// Once a second: the requests shed since the last time, one runtime.load_shed event per app.
void Runtime::flush_shed_counts() {
    if (shed_counts_.empty()) return;
    Json entries(json_array());
    for (const auto &[slugs, count] : shed_counts_) {
        if (slugs.first.starts_with("@")) {
            json_array_append_new(entries.get(), json_pack("{s:s, s:I, s:s}", "domain", slugs.first.c_str() + 1, "count",
                                                           static_cast<json_int_t>(count), "daemon", daemon_name().c_str()));
            continue;
        }
        json_array_append_new(entries.get(), json_pack("{s:s, s:o, s:I, s:s}", "workspace", slugs.first.c_str(), "app",
                                                       slugs.second.empty() ? json_null() : json_string(slugs.second.c_str()),
                                                       "count", static_cast<json_int_t>(count), "daemon",
                                                       daemon_name().c_str()));
    }
    shed_counts_.clear();
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kOperatorNoDiskWait, {}});
    statements.push_back(pg::Statement{"select flowgres.runtime_load_shed_record($1::jsonb)", {dump_json(entries.get())}});
    worker_.pool.run(std::move(statements), [](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok)
            log_line(LogLevel::warn, "load-shed events were not recorded", {{"error", result.message}});
    });
}

// Cloudflare Turnstile's siteverify (also hCaptcha's and reCAPTCHA's shape): POST
// application/x-www-form-urlencoded secret, response, remoteip → {"success": bool, …}. It goes
// through the egress policy like any http step. Unreachable or unconfigured fails closed.
void Runtime::verify_captcha(const std::string &token, const std::string &client, std::function<void(bool)> done) {
    if (worker_.config.captcha_secret.empty() || token.size() > 2048) return done(false);
    executor::HttpFetch fetch;
    fetch.method = "POST";
    fetch.url = worker_.config.captcha_verify_url;
    fetch.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    fetch.body =
        "secret=" + percent_encode(worker_.config.captcha_secret) + "&response=" + percent_encode(token) + "&remoteip=" + percent_encode(client);
    fetch.max_response_bytes = 64 * 1024;
    // A slow provider fails closed after captcha_timeout_ms a phase, never holding the request.
    fetch.connect_timeout_ms = fetch.first_byte_timeout_ms = fetch.idle_timeout_ms =
        static_cast<uint64_t>(worker_.config.captcha_timeout_ms);
    fetch.tls = worker_.environment.tls;
    auto holder = std::make_shared<std::unique_ptr<executor::HttpClientCall>>();
    *holder = executor::http_fetch(worker_.loop, std::move(fetch), *worker_.environment.egress,
                                   [holder, done](executor::HttpFetchResult result) mutable {
                                       bool passed = false;
                                       if (result.ok && result.status == 200) {
                                           try {
                                               Json answer = parse_json(result.body, "siteverify");
                                               passed = json_is_true(json_object_get(answer.get(), "success"));
                                           } catch (const Error &) {
                                           }
                                       } else {
                                           log_line(LogLevel::warn, "CAPTCHA verification failed",
                                                    {{"error_code", result.error_code}, {"error", result.message}});
                                       }
                                       auto keep = std::move(*holder);  // the call ends with this callback
                                       done(passed);
                                   });
}

}  // namespace flowgres::daemon
