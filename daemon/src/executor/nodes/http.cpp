// http: one request through the step HTTP client. The URL's placeholders are percent-encoded,
// header values lose CR and LF, `query` members are percent-encoded and appended to the URL,
// a JSON body is sent as application/json. Headers and query are the credential fields:
// {{secrets.NAME}} renders there (and nowhere else), and a secret that cannot be used fails
// the step with its own code (SECRET_REVOKED, SECRET_EXPIRED, SECRET_NOT_FOUND). The output is
// {status, headers, body}, the body parsed when the response says it is JSON. A status other
// than expected_status (default: any 2xx) fails the step with HTTP_UNEXPECTED_STATUS.
#include "executor/http_client.hpp"
#include "executor/nodes/nodes.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/workflow.hpp"

#include <optional>

namespace flowgres::executor::nodes {
namespace {

class HttpTask : public NodeTask {
public:
    explicit HttpTask(std::unique_ptr<HttpClientCall> call) : call_(std::move(call)) {}
    void cancel() override {
        if (call_) call_->cancel();
    }

private:
    std::unique_ptr<HttpClientCall> call_;
};

bool status_expected(const json_t *expected, int status) {
    if (!expected) return status >= 200 && status < 300;
    if (json_is_integer(expected)) return json_integer_value(expected) == status;
    size_t index;
    json_t *code;
    json_array_foreach(const_cast<json_t *>(expected), index, code) if (json_integer_value(code) == status) return true;
    return false;
}

std::string text_of(const json_t *rendered) {
    return template_text(rendered);
}

// The step's failure when a secret it references cannot be used, else nullopt.
std::optional<NodeOutcome> unusable_secret(const NodeCall &call) {
    for (const auto &name : workflow::referenced_secrets(call.node)) {
        const RunSecrets *opened = call.options.secrets.get();
        if (opened) {
            if (auto found = opened->unavailable.find(name); found != opened->unavailable.end())
                return NodeOutcome::failure(found->second.first, found->second.second);
            if (json_object_get(opened->object.get(), name.c_str())) continue;
        }
        return NodeOutcome::failure("SECRET_NOT_FOUND", "the workspace has no secret named " + name);
    }
    return std::nullopt;
}

// "?a=1&b=x%20y" appended to `url` (after any query it has).
std::string with_query(std::string url, const json_t *query, const TemplateRoot &roots) {
    const char *name;
    json_t *value;
    bool first = url.find('?') == std::string::npos;
    json_object_foreach(const_cast<json_t *>(query), name, value) {
        Json rendered(json_is_string(value)
                          ? render_template(json_string_value(value), TemplateContext::url_component, roots)
                          : json_string(template_text(value).c_str()));
        url += first ? '?' : '&';
        first = false;
        url += percent_encode(name);
        url += '=';
        url += json_string_value(rendered.get());
    }
    return url;
}

}  // namespace

std::unique_ptr<NodeTask> run_http(NodeCall &call, NodeDone done) {
    const json_t *config = call.node.config.get();
    HttpFetch fetch;
    if (auto refused = unusable_secret(call)) {
        done(std::move(*refused));
        return nullptr;
    }
    // Credential fields also see {{secrets.NAME}}; the rest of the config never does.
    TemplateRoot credential_roots = [&call](const std::string &root) -> const json_t * {
        if (root == "secrets") return call.options.secrets ? call.options.secrets->object.get() : nullptr;
        return call.roots(root);
    };
    try {
        const char *method = json_string_value(json_object_get(config, "method"));
        fetch.method = method ? method : "GET";
        const char *url = json_string_value(json_object_get(config, "url"));
        Json rendered_url(render_template(url ? url : "", TemplateContext::url_component, call.roots));
        fetch.url = json_string_value(rendered_url.get());
        if (const json_t *query = json_object_get(config, "query")) fetch.url = with_query(fetch.url, query, credential_roots);
        bool has_content_type = false;
        const char *name;
        json_t *value;
        json_object_foreach(json_object_get(config, "headers"), name, value) {
            Json header(render_template(json_string_value(value) ? json_string_value(value) : "",
                                        TemplateContext::header_value, credential_roots));
            fetch.headers.emplace_back(name, json_string_value(header.get()));
            std::string lowered = name;
            for (char &c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            has_content_type |= lowered == "content-type";
        }
        if (const json_t *body = json_object_get(config, "body")) {
            Json rendered(render_json_templates(body, call.roots));
            if (json_is_string(rendered.get())) {
                fetch.body = text_of(rendered.get());
            } else {
                fetch.body = dump_json(rendered.get());
                if (!has_content_type) fetch.headers.emplace_back("Content-Type", "application/json");
            }
        }
        fetch.max_response_bytes = call.options.max_http_response_bytes;
        fetch.max_header_bytes = call.options.max_http_header_bytes;
        // The step's own timeout (the engine's NODE_TIMEOUT) is the ceiling of every phase.
        auto ceiling = [&](uint64_t setting) {
            auto step = workflow::node_options(call.node).timeout_ms;
            return step && *step > 0 ? std::min<uint64_t>(setting, static_cast<uint64_t>(*step)) : setting;
        };
        fetch.connect_timeout_ms = ceiling(call.options.http_connect_timeout_ms);
        fetch.first_byte_timeout_ms = ceiling(call.options.http_first_byte_timeout_ms);
        fetch.idle_timeout_ms = ceiling(call.options.http_idle_timeout_ms);
        fetch.tls = call.options.tls;
        if (const json_t *limit = json_object_get(config, "max_response_bytes");
            json_is_integer(limit) && json_integer_value(limit) > 0)
            fetch.max_response_bytes =
                std::min(fetch.max_response_bytes, static_cast<size_t>(json_integer_value(limit)));
    } catch (const Error &error) {
        done(NodeOutcome::failure("NODE_FAILED", error.message()));
        return nullptr;
    }
    std::shared_ptr<json_t> expected(json_incref(json_object_get(config, "expected_status")),
                                     [](json_t *value) { json_decref(value); });
    auto client =
        http_fetch(call.loop, std::move(fetch), *call.options.egress, [done, expected](HttpFetchResult result) {
            if (!result.ok) return done(NodeOutcome::failure(result.error_code, result.message));
            Json headers(new_json_object());
            bool json_body = false;
            for (const auto &[name, value] : result.headers) {
                json_object_set_new(headers.get(), name.c_str(), json_stringn(value.data(), value.size()));
                if (name == "content-type" && value.find("json") != std::string::npos) json_body = true;
            }
            Json body;
            if (json_body) body.reset(json_loadb(result.body.data(), result.body.size(), JSON_DECODE_ANY, nullptr));
            if (!body) body.reset(json_stringn(result.body.data(), result.body.size()));
            Json output(
                json_pack("{s:i, s:O, s:O}", "status", result.status, "headers", headers.get(), "body", body.get()));
            if (!status_expected(expected.get(), result.status)) {
                NodeOutcome outcome = NodeOutcome::failure("HTTP_UNEXPECTED_STATUS",
                                                           "the response status was " + std::to_string(result.status));
                outcome.output = std::move(output);
                return done(std::move(outcome));
            }
            done(NodeOutcome::success(std::move(output)));
        });
    return std::make_unique<HttpTask>(std::move(client));
}

}  // namespace flowgres::executor::nodes
