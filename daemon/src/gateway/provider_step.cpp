// The provider step: the call to the model, on the worker's loop through the LLM client (the
// egress policy, timeouts, retries on 429 and 5xx with Retry-After). Routes are tried in their
// order while nothing has reached the client; a route whose key cannot be used is skipped.
//   - stream: true — each delta goes out as an OpenAI chat.completion.chunk the moment it
//     arrives, then the finishing chunk, the usage chunk when stream_options.include_usage
//     asked for it, and [DONE]. A failure after the stream opened ends it with an error event.
//     A client that leaves stops the call.
//   - otherwise — one chat.completion with the whole message and its usage.
// The usage is the provider's report, or, with none, the prompt estimated and the deltas
// counted on the wire.
#include "flowgres/json.hpp"
#include "gateway/gateway_call.hpp"

namespace flowgres::daemon::gateway {
namespace {

struct ErrorShape {
    int status;
    const char *type;
    const char *code;
};

// How a provider failure is told to the caller.
ErrorShape shape_of(const std::string &error_code) {
    if (error_code == "LLM_RATE_LIMITED") return {429, "rate_limit_error", "rate_limit_exceeded"};
    if (error_code == "LLM_TIMEOUT") return {504, "api_error", "upstream_timeout"};
    if (error_code.rfind("SECRET_", 0) == 0) return {502, "api_error", "provider_key_unavailable"};
    return {502, "api_error", "upstream_error"};
}

std::string usage_json(const llm::Usage &usage) {
    return "{\"prompt_tokens\":" + std::to_string(usage.prompt_tokens) +
           ",\"completion_tokens\":" + std::to_string(usage.completion_tokens) +
           ",\"total_tokens\":" + std::to_string(usage.prompt_tokens + usage.completion_tokens) + "}";
}

class ProviderStep : public Step {
public:
    explicit ProviderStep(WorkerContext &worker) : worker_(worker) {}

    void run(const std::shared_ptr<GatewayCall> &call, Next next) override { attempt(call, 0, std::move(next)); }

private:
    // The prefix every chunk of this call shares.
    static std::string chunk_head(const GatewayCall &call) {
        return "data: {\"id\":\"chatcmpl-" + call.call->trace.trace_id + "\",\"object\":\"chat.completion.chunk\",\"created\":" +
               std::to_string(call.created) + ",\"model\":" + json_quote(call.chat.model) + ",";
    }

    bool open_stream(const std::shared_ptr<GatewayCall> &call) {
        call->stream_opened = true;
        http::Response head;
        head.with_header("Content-Type", "text/event-stream; charset=utf-8")
            .with_header("Cache-Control", "no-store")
            .with_header("X-Accel-Buffering", "no");
        add_trace_headers(*call, head);
        for (auto &[name, value] : call->call->headers) head.with_header(name, value);
        worker_.note_stream_opened(call->call, "gateway stream opened");
        return call->call->responder.begin_stream(head) &&
               call->call->responder.send_chunk(chunk_head(*call) +
                                                "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                                                "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    }

    void attempt(const std::shared_ptr<GatewayCall> &call, size_t index, Next next) {
        while (index < call->routes.size() && !call->routes[index].key_error_code.empty()) index++;
        if (index >= call->routes.size()) {
            const llm::Route *last = call->routes.empty() ? nullptr : &call->routes.back();
            if (!call->route && last) {  // every route's key was unusable
                call->route = last;
                call->result.error_code = last->key_error_code;
                call->result.message = last->key_error_message;
            }
            return fail(call, std::move(next));
        }
        const llm::Route &route = call->routes[index];
        call->route = &route;
        llm::CallLimits limits = worker_.llm_limits;
        limits.total_timeout_ms = std::min<uint64_t>(limits.total_timeout_ms, static_cast<uint64_t>(route.timeout_ms));
        auto on_delta = [this, call](std::string_view delta) {
            if (!call->stream) return true;
            if (!call->stream_opened && !open_stream(call)) return stop_for_gone_client(call);
            std::string chunk = chunk_head(*call) + "\"choices\":[{\"index\":0,\"delta\":{\"content\":" + json_quote(delta) +
                                "},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
            return call->call->responder.send_chunk(chunk) || stop_for_gone_client(call);
        };
        call->active = llm::chat(worker_.loop, llm::Endpoint{route.provider, route.base_url, route.api_key}, call->chat,
                                 limits, worker_.environment.egress, worker_.environment.tls, on_delta,
                                 [this, call, index, next = std::move(next)](llm::CallResult result) mutable {
                                     call->result = std::move(result);
                                     // Another route, while nothing has reached the client.
                                     if (!call->result.ok && !call->client_gone && call->result.streamed_deltas == 0 &&
                                         !call->stream_opened && index + 1 < call->routes.size())
                                         return attempt(call, index + 1, std::move(next));
                                     if (call->result.ok) return succeed(call, std::move(next));
                                     fail(call, std::move(next));
                                 });
    }

    // The client left mid-stream: the call stops (done reports LLM_STREAM_STOPPED).
    static bool stop_for_gone_client(const std::shared_ptr<GatewayCall> &call) {
        call->client_gone = true;
        return false;
    }

    void succeed(const std::shared_ptr<GatewayCall> &call, Next next) {
        llm::Usage usage = usage_of(*call);
        std::string finish = call->result.finish_reason.empty() ? "stop" : call->result.finish_reason;
        if (!call->stream) {
            if (!call->call->responder.connected()) call->client_gone = true;
            http::Response response;
            response.body = "{\"id\":\"chatcmpl-" + call->call->trace.trace_id +
                            "\",\"object\":\"chat.completion\",\"created\":" + std::to_string(call->created) +
                            ",\"model\":" + json_quote(call->chat.model) +
                            ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":" +
                            json_quote(call->result.text) + ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":" +
                            json_quote(finish) + "}],\"usage\":" + usage_json(usage) + "}";
            response.with_header("Content-Type", "application/json");
            add_trace_headers(*call, response);
            worker_.finish(call->call, std::move(response));
            return next();
        }
        if (!call->stream_opened && !open_stream(call)) call->client_gone = true;
        auto &responder = call->call->responder;
        bool sent = !call->client_gone &&
                    responder.send_chunk(chunk_head(*call) + "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                                                             "\"finish_reason\":" + json_quote(finish) + "}]}\n\n");
        if (sent && call->include_usage)
            sent = responder.send_chunk(chunk_head(*call) + "\"choices\":[],\"usage\":" + usage_json(usage) + "}\n\n");
        if (sent) sent = responder.send_chunk("data: [DONE]\n\n");
        if (!sent) call->client_gone = true;
        responder.end_stream();
        next();
    }

    void fail(const std::shared_ptr<GatewayCall> &call, Next next) {
        if (call->client_gone || call->result.error_code == "LLM_STREAM_STOPPED") {
            call->client_gone = true;
            if (call->stream_opened) call->call->responder.end_stream();
            return next();
        }
        ErrorShape shape = shape_of(call->result.error_code);
        std::string message = "The model provider failed: " + call->result.message;
        if (!call->stream_opened) {
            answer_error(worker_, *call, shape.status, shape.type, shape.code, message);
            return next();
        }
        // Part of the answer went out: the stream ends with OpenAI's error event.
        call->call->responder.send_chunk("data: {\"error\":{\"message\":" + json_quote(message) + ",\"type\":\"" +
                                         shape.type + "\",\"param\":null,\"code\":\"" + shape.code + "\"}}\n\n");
        call->call->responder.end_stream();
        next();
    }

    WorkerContext &worker_;
};

}  // namespace

std::unique_ptr<Step> provider_step(WorkerContext &worker) { return std::make_unique<ProviderStep>(worker); }

}  // namespace flowgres::daemon::gateway
