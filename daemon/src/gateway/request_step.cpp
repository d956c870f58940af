// The request step: the body of POST /v1/chat/completions read as OpenAI documents it. What
// flowgres does not do is refused by name (n > 1, tools), never silently ignored; fields that
// change nothing here (user, seed, top_p, …) pass. Every refusal is OpenAI's 400
// invalid_request_error naming the parameter.
#include <cmath>

#include "flowgres/crypto.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "gateway/gateway_call.hpp"
#include "http/request.hpp"

namespace flowgres::daemon::gateway {
namespace {

constexpr size_t kMaxMessages = 2048;
constexpr long long kMaxTokensAsked = 10'000'000;

struct Refusal {
    std::string param, message;
};

// A message's content: a string, or OpenAI's array of parts of which only text is taken.
std::optional<std::string> content_of(const json_t *content) {
    if (json_is_string(content)) return std::string(json_string_value(content), json_string_length(content));
    if (!json_is_array(content)) return std::nullopt;
    std::string text;
    size_t index;
    const json_t *part;
    json_array_foreach(content, index, part) {
        const json_t *type = json_object_get(part, "type");
        const json_t *value = json_object_get(part, "text");
        if (!json_is_string(type) || std::string_view(json_string_value(type)) != "text" || !json_is_string(value))
            return std::nullopt;
        text.append(json_string_value(value), json_string_length(value));
    }
    return text;
}

std::optional<Refusal> read_chat(const json_t *body, GatewayCall &call) {
    if (!json_is_object(body)) return Refusal{"", "The body must be a JSON object."};
    const json_t *model = json_object_get(body, "model");
    if (!json_is_string(model) || json_string_length(model) == 0 || json_string_length(model) > 200)
        return Refusal{"model", "model must be a model id of 1 to 200 bytes."};
    call.chat.model = json_string_value(model);
    const json_t *messages = json_object_get(body, "messages");
    if (!json_is_array(messages) || json_array_size(messages) == 0 || json_array_size(messages) > kMaxMessages)
        return Refusal{"messages", "messages must be an array of 1 to 2048 messages."};
    size_t index;
    const json_t *message;
    json_array_foreach(messages, index, message) {
        std::string at = "messages[" + std::to_string(index) + "]";
        const json_t *role = json_object_get(message, "role");
        std::string_view name = json_is_string(role) ? json_string_value(role) : "";
        if (name != "system" && name != "user" && name != "assistant" && name != "developer")
            return Refusal{at + ".role", "role must be system, developer, user or assistant."};
        std::optional<std::string> content = content_of(json_object_get(message, "content"));
        if (!content) return Refusal{at + ".content", "content must be a string or an array of text parts."};
        call.prompt_estimate += llm::estimate_tokens(*content) + 4;  // and the message's framing
        call.chat.messages.push_back(llm::Message{name == "developer" ? "system" : std::string(name), std::move(*content)});
    }
    const json_t *stream = json_object_get(body, "stream");
    if (stream && !json_is_null(stream)) {
        if (!json_is_boolean(stream)) return Refusal{"stream", "stream must be true or false."};
        call.stream = json_is_true(stream);
    }
    const json_t *options = json_object_get(body, "stream_options");
    if (options && !json_is_null(options)) {
        if (!call.stream) return Refusal{"stream_options", "stream_options is only allowed when stream is true."};
        const json_t *usage = json_object_get(options, "include_usage");
        if (usage && !json_is_boolean(usage)) return Refusal{"stream_options.include_usage", "include_usage must be true or false."};
        call.include_usage = json_is_true(usage);
    }
    for (const char *name : {"max_completion_tokens", "max_tokens"}) {
        const json_t *value = json_object_get(body, name);
        if (!value || json_is_null(value)) continue;
        if (!json_is_integer(value) || json_integer_value(value) < 1 || json_integer_value(value) > kMaxTokensAsked)
            return Refusal{name, std::string(name) + " must be an integer from 1 to 10000000."};
        call.chat.max_tokens = json_integer_value(value);
        break;
    }
    const json_t *temperature = json_object_get(body, "temperature");
    if (temperature && !json_is_null(temperature)) {
        if (!json_is_number(temperature) || json_number_value(temperature) < 0 || json_number_value(temperature) > 2 ||
            !std::isfinite(json_number_value(temperature)))
            return Refusal{"temperature", "temperature must be a number from 0 to 2."};
        call.chat.temperature = json_number_value(temperature);
    }
    const json_t *n = json_object_get(body, "n");
    if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1))
        return Refusal{"n", "Only n = 1 is supported."};
    for (const char *unsupported : {"tools", "functions", "tool_choice", "function_call"})
        if (const json_t *value = json_object_get(body, unsupported); value && !json_is_null(value))
            return Refusal{unsupported, std::string(unsupported) + " is not supported by this gateway yet."};
    // The provider is asked the way the client asked: a stream is passed on as it comes, a
    // whole answer is taken whole (a provider writes one body more cheaply than many events).
    call.chat.stream = call.stream;
    return std::nullopt;
}

// POST /v1/embeddings: the model and its input (a string or up to 2048 strings) checked; the
// body goes to the provider as the client sent it (encoding_format, dimensions and user too).
std::optional<Refusal> read_embeddings(const json_t *body, GatewayCall &call) {
    if (!json_is_object(body)) return Refusal{"", "The body must be a JSON object."};
    const json_t *model = json_object_get(body, "model");
    if (!json_is_string(model) || json_string_length(model) == 0 || json_string_length(model) > 200)
        return Refusal{"model", "model must be a model id of 1 to 200 bytes."};
    call.chat.model = json_string_value(model);
    const json_t *input = json_object_get(body, "input");
    if (json_is_string(input) && json_string_length(input) > 0) {
        call.prompt_estimate = llm::estimate_tokens(std::string_view(json_string_value(input), json_string_length(input)));
    } else if (json_is_array(input) && json_array_size(input) > 0 && json_array_size(input) <= kMaxMessages) {
        size_t index;
        const json_t *text;
        json_array_foreach(input, index, text) {
            if (!json_is_string(text) || json_string_length(text) == 0)
                return Refusal{"input[" + std::to_string(index) + "]", "each input must be a non-empty string."};
            call.prompt_estimate += llm::estimate_tokens(std::string_view(json_string_value(text), json_string_length(text)));
        }
    } else {
        return Refusal{"input", "input must be a non-empty string or an array of 1 to 2048 non-empty strings."};
    }
    call.upstream_body = dump_json(body);
    return std::nullopt;
}

class RequestStep : public Step {
public:
    void run(const std::shared_ptr<GatewayCall> &call, Next next) override {
        const http::Request &request = call->call->request;
        auto token = http::bearer_token(request);
        if (!token || token->empty())
            return answer_error(*worker_, *call, 401, "invalid_request_error", "invalid_api_key",
                                "You didn't provide an API key: send it as Authorization: Bearer <key>.");
        call->key_hash = sha256_hex(*token);
        if (call->list_models) return next();
        Json body;
        try {
            body = parse_json(request.body, "body");
        } catch (const Error &) {
            return answer_error(*worker_, *call, 400, "invalid_request_error", "invalid_json",
                                "The body is not valid JSON.");
        }
        if (auto conversation = request.header("x-conversation-id")) {
            if (!is_uuid(*conversation))
                return answer_error(*worker_, *call, 400, "invalid_request_error", "invalid_value",
                                    "X-Conversation-Id must be a UUID.", "X-Conversation-Id");
            call->conversation_id = std::string(*conversation);
        }
        if (std::optional<Refusal> refusal = call->embeddings ? read_embeddings(body.get(), *call)
                                                               : read_chat(body.get(), *call))
            return answer_error(*worker_, *call, 400, "invalid_request_error", "invalid_value", refusal->message,
                                refusal->param);
        next();
    }
    explicit RequestStep(WorkerContext *worker) : worker_(worker) {}

private:
    WorkerContext *worker_;
};

}  // namespace

std::unique_ptr<Step> request_step(WorkerContext &worker) { return std::make_unique<RequestStep>(&worker); }

}  // namespace flowgres::daemon::gateway
