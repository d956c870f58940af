// The embeddings step: POST /v1/embeddings to the model's provider, one plain request on the
// worker's loop through the step HTTP client (the egress policy, TLS verification, kept-alive
// connections), the routes tried in their order until one answers. The provider's answer goes
// to the client as it came (OpenAI's list of embeddings, in whatever encoding_format was asked);
// its usage is what the call pays, or, with none reported, the input's estimate.
#include "executor/http_client.hpp"
#include "flowgres/json.hpp"
#include "gateway/gateway_call.hpp"

namespace flowgres::daemon::gateway {
namespace {

constexpr size_t kMaxEmbeddingsBytes = 64 * 1024 * 1024;

class EmbeddingsStep : public Step {
public:
    explicit EmbeddingsStep(WorkerContext &worker) : worker_(worker) {}

    void run(const std::shared_ptr<GatewayCall> &call, Next next) override { attempt(call, 0, std::move(next)); }

private:
    void attempt(const std::shared_ptr<GatewayCall> &call, size_t index, Next next) {
        while (index < call->routes.size() && !call->routes[index].key_error_code.empty()) index++;
        if (index >= call->routes.size()) {
            if (!call->route && !call->routes.empty()) {
                call->route = &call->routes.back();
                call->result.error_code = call->route->key_error_code;
                call->result.message = call->route->key_error_message;
            }
            answer_error(worker_, *call, 502, "api_error",
                         call->result.error_code.rfind("SECRET_", 0) == 0 ? "provider_key_unavailable" : "upstream_error",
                         "The model provider failed: " + call->result.message);
            return next();
        }
        const llm::Route &route = call->routes[index];
        call->route = &route;
        executor::HttpFetch fetch;
        fetch.method = "POST";
        fetch.url = route.base_url + "/embeddings";
        fetch.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
        if (!route.api_key.empty()) fetch.headers.emplace_back("Authorization", "Bearer " + route.api_key);
        fetch.body = call->upstream_body;
        fetch.max_response_bytes = kMaxEmbeddingsBytes;
        fetch.connect_timeout_ms = worker_.llm_limits.connect_timeout_ms;
        fetch.first_byte_timeout_ms = static_cast<uint64_t>(route.timeout_ms);
        fetch.idle_timeout_ms = worker_.llm_limits.idle_timeout_ms;
        fetch.max_redirects = 0;
        fetch.tls = worker_.environment.tls;
        fetch.keep_alive = true;
        auto started = std::chrono::steady_clock::now();
        call->fetch = executor::http_fetch(
            worker_.loop, std::move(fetch), *worker_.environment.egress,
            [this, call, index, started, next = std::move(next)](executor::HttpFetchResult result) mutable {
                call->result.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - started)
                                              .count();
                call->result.status = result.status;
                bool answered = result.ok && result.status >= 200 && result.status < 300;
                Json body;
                if (answered) {
                    try {
                        body = parse_json(result.body, "embeddings");
                    } catch (const Error &) {
                        answered = false;
                    }
                }
                if (!answered) {
                    call->result.error_code = result.ok ? "LLM_REQUEST_FAILED" : result.error_code;
                    call->result.message = result.ok ? "it answered " + std::to_string(result.status) +
                                                           ": " + llm::error_message(result.body)
                                                     : result.message;
                    if (index + 1 < call->routes.size()) return attempt(call, index + 1, std::move(next));
                    answer_error(worker_, *call, 502, "api_error", "upstream_error",
                                 "The model provider failed: " + call->result.message);
                    return next();
                }
                call->result.ok = true;
                call->result.error_code.clear();
                const json_t *prompt = json_object_get(json_object_get(body.get(), "usage"), "prompt_tokens");
                if (json_is_integer(prompt)) call->result.usage = llm::Usage{json_integer_value(prompt), 0};
                if (!call->call->responder.connected()) call->client_gone = true;
                http::Response response;
                response.body = std::move(result.body);
                response.with_header("Content-Type", "application/json");
                add_trace_headers(*call, response);
                worker_.finish(call->call, std::move(response));
                next();
            });
    }

    WorkerContext &worker_;
};

}  // namespace

std::unique_ptr<Step> embeddings_step(WorkerContext &worker) { return std::make_unique<EmbeddingsStep>(worker); }

}  // namespace flowgres::daemon::gateway
