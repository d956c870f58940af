#include "gateway/gateway.hpp"

#include "flowgres/json.hpp"

namespace flowgres::daemon::gateway {

llm::Usage usage_of(const GatewayCall &call) {
    const llm::CallResult &result = call.result;
    if (result.usage) return *result.usage;
    if (result.ok && call.embeddings) return llm::Usage{call.prompt_estimate, 0};
    if (result.ok && !call.stream) return llm::Usage{call.prompt_estimate, llm::estimate_tokens(result.text)};
    if (result.streamed_deltas > 0) return llm::Usage{call.prompt_estimate, result.streamed_deltas};
    return llm::Usage{};
}

void add_trace_headers(const GatewayCall &call, http::Response &response) {
    response.with_header("X-Request-Id", call.call->trace.request_id)
        .with_header("X-Trace-Id", call.call->trace.trace_id)
        .with_header("traceparent", call.call->trace.traceparent());
}

void answer_error(WorkerContext &worker, const GatewayCall &call, int status, std::string_view type,
                  std::string_view code, std::string_view message, std::string_view param) {
    http::Response response;
    response.status = status;
    response.body = "{\"error\":{\"message\":" + json_quote(message) + ",\"type\":" + json_quote(type) +
                    ",\"param\":" + (param.empty() ? std::string("null") : json_quote(param)) +
                    ",\"code\":" + json_quote(code) + "}}";
    response.with_header("Content-Type", "application/json");
    add_trace_headers(call, response);
    worker.finish(call.call, std::move(response));
}

Gateway::Gateway(WorkerContext &worker) : worker_(worker) {
    chat_steps_.push_back(request_step(worker));
    chat_steps_.push_back(admission_step(worker));
    chat_steps_.push_back(provider_step(worker));
    chat_steps_.push_back(capture_step(worker));
    embedding_steps_.push_back(request_step(worker));
    embedding_steps_.push_back(admission_step(worker));
    embedding_steps_.push_back(embeddings_step(worker));
    embedding_steps_.push_back(capture_step(worker));
    model_steps_.push_back(request_step(worker));
    model_steps_.push_back(admission_step(worker));
}

Gateway::~Gateway() = default;

void Gateway::handle(const std::shared_ptr<Call> &call) {
    auto gateway_call = std::make_shared<GatewayCall>();
    gateway_call->call = call;
    const std::string &path = call->request.path;
    const std::string &method = call->request.method;
    bool chat = path == "/v1/chat/completions";
    bool embeddings = path == "/v1/embeddings";
    bool models = path == "/v1/models";
    call->route_label = chat ? "gateway.chat" : embeddings ? "gateway.embeddings" : models ? "gateway.models" : "gateway";
    if (!chat && !embeddings && !models)
        return answer_error(worker_, *gateway_call, 404, "invalid_request_error", "unknown_url",
                            "Unknown request URL: " + method + " " + path.substr(0, 200) + ".");
    if (((chat || embeddings) && method != "POST") || (models && method != "GET" && method != "HEAD"))
        return answer_error(worker_, *gateway_call, 405, "invalid_request_error", "method_not_allowed",
                            "Use " + std::string(models ? "GET" : "POST") + " for " + path + ".");
    gateway_call->list_models = models;
    gateway_call->embeddings = embeddings;
    run(gateway_call, 0);
}

void Gateway::run(const std::shared_ptr<GatewayCall> &call, size_t step) {
    auto &steps = call->list_models ? model_steps_ : call->embeddings ? embedding_steps_ : chat_steps_;
    if (step >= steps.size()) return;
    steps[step]->run(call, [this, call, step] { run(call, step + 1); });
}

}  // namespace flowgres::daemon::gateway
