// The admission step: auth, policy and the wallet hold in one call into the extension
// (gateway_admit), so a call costs one round trip before its provider is asked. GET /v1/models
// ends here with the models the key's workspace may use.
#include <ctime>

#include "flowgres/crypto.hpp"
#include "flowgres/json.hpp"
#include "gateway/gateway_call.hpp"
#include "forwarding.hpp"
#include "llm/route_document.hpp"

namespace flowgres::daemon::gateway {
namespace {

// GET /v1/models as OpenAI lists them: {"object": "list", "data": [{id, object, created, owned_by}]}.
std::string model_list(const json_t *models) {
    std::string data;
    size_t index;
    const json_t *model;
    std::set<std::string> listed;  // a model two providers offer is one model to the caller
    json_array_foreach(json_object_get(models, "items"), index, model) {
        const char *id = json_string_value(json_object_get(model, "model"));
        const char *provider = json_string_value(json_object_get(model, "provider"));
        if (!id || !listed.insert(id).second) continue;
        data += (data.empty() ? "" : ",") + std::string("{\"id\":") + json_quote(id) +
                ",\"object\":\"model\",\"created\":0,\"owned_by\":" + json_quote(provider ? provider : "") + "}";
    }
    return "{\"object\":\"list\",\"data\":[" + data + "]}";
}

// The key's limits as OpenAI's headers (x-ratelimit-limit-requests, …-remaining-…, …-reset-…),
// added to whatever answer the call gets.
void note_rate_limits(const json_t *limits, Call &call) {
    for (const char *kind : {"requests", "tokens"}) {
        const json_t *window = json_object_get(limits, kind);
        if (!window) continue;
        auto number = [&](const char *name) { return std::to_string(json_integer_value(json_object_get(window, name))); };
        call.headers.emplace_back(std::string("x-ratelimit-limit-") + kind, number("limit"));
        call.headers.emplace_back(std::string("x-ratelimit-remaining-") + kind, number("remaining"));
        call.headers.emplace_back(std::string("x-ratelimit-reset-") + kind, number("reset") + "s");
    }
}

class AdmissionStep : public Step {
public:
    explicit AdmissionStep(WorkerContext &worker)
        : worker_(worker), trusted_proxies_(CidrList::parse(worker.config.trusted_proxies)) {}

    void run(const std::shared_ptr<GatewayCall> &call, Next next) override {
        Json request(new_json_object());
        json_object_set_new(request.get(), "key_hash", json_string(call->key_hash.c_str()));
        const http::Request &http_request = call->call->request;
        std::string client = client_address(http_request.peer_address,
                                            {http_request.header_list("forwarded"), http_request.header_list("x-forwarded-for")},
                                            trusted_proxies_);
        json_object_set_new(request.get(), "ip", json_string(client.c_str()));
        if (call->list_models) {
            json_object_set_new(request.get(), "action", json_string("models"));
        } else {
            call->hold_id = random_uuid();
            json_object_set_new(request.get(), "model", json_string(call->chat.model.c_str()));
            json_object_set_new(request.get(), "prompt_tokens", json_integer(call->prompt_estimate));
            if (call->chat.max_tokens) json_object_set_new(request.get(), "max_tokens", json_integer(*call->chat.max_tokens));
            if (call->embeddings) json_object_set_new(request.get(), "kind", json_string("embeddings"));
            json_object_set_new(request.get(), "hold_id", json_string(call->hold_id.c_str()));
        }
        // One statement, acting as the operator inside it: a call pays one bind and execution.
        std::vector<pg::Statement> statements;
        statements.push_back(pg::Statement{
            "select flowgres.gateway_admit($1::jsonb)::text "
            "from (select set_config('flowgres.actor', 'operator', true)) as acting",
            {dump_json(request.get())}});
        worker_.pool.run(std::move(statements), [this, call, next = std::move(next)](pg::JobResult &&result) {
            if (result.outcome != pg::JobResult::Outcome::ok || !result.values[0])
                return answer_error(worker_, *call, 503, "server_error", "service_unavailable",
                                    "The gateway cannot reach its database: retry.");
            Json decision;
            try {
                decision = parse_json(*result.values[0], "admission");
            } catch (const Error &) {
                return answer_error(worker_, *call, 500, "server_error", "internal_error", "The admission was unreadable.");
            }
            const json_t *answer = decision.get();
            note_rate_limits(json_object_get(answer, "rate_limit"), *call->call);
            if (std::string_view(json_string_value(json_object_get(answer, "decision")) ?: "") != "allow") {
                call->hold_id.clear();  // nothing was held
                if (const json_t *retry = json_object_get(answer, "retry_after"))
                    call->call->headers.emplace_back("Retry-After", std::to_string(json_integer_value(retry)));
                return answer_error(worker_, *call, static_cast<int>(json_integer_value(json_object_get(answer, "status"))),
                                    json_string_value(json_object_get(answer, "type")) ?: "invalid_request_error",
                                    json_string_value(json_object_get(answer, "code")) ?: "refused",
                                    json_string_value(json_object_get(answer, "message")) ?: "refused");
            }
            call->key_id = json_string_value(json_object_get(answer, "key_id"));
            call->user_id = json_string_value(json_object_get(answer, "user_id"));
            call->workspace_id = json_string_value(json_object_get(answer, "workspace_id"));
            if (call->list_models) {
                http::Response response;
                response.body = model_list(json_object_get(answer, "models"));
                response.with_header("Content-Type", "application/json");
                add_trace_headers(*call, response);
                return worker_.finish(call->call, std::move(response));
            }
            call->hold = json_integer_value(json_object_get(answer, "hold"));
            if (call->hold == 0) call->hold_id.clear();  // a free model: nothing held
            size_t index;
            const json_t *entry;
            json_array_foreach(json_object_get(answer, "routes"), index, entry)
                call->routes.push_back(llm::route_from_document(entry, *worker_.environment.keyring, call->workspace_id).route);
            call->created = static_cast<long long>(std::time(nullptr));
            next();
        });
    }

private:
    WorkerContext &worker_;
    const CidrList trusted_proxies_;
};

}  // namespace

std::unique_ptr<Step> admission_step(WorkerContext &worker) { return std::make_unique<AdmissionStep>(worker); }

}  // namespace flowgres::daemon::gateway
