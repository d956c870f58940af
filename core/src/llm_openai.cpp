// The chat-completions wire protocol (llm_openai.hpp).
#include "flowgres/llm_openai.hpp"

#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"

namespace flowgres::llm {

std::string chat_request_body(const ChatRequest &request) {
    Json body(new_json_object());
    json_object_set_new(body.get(), "model", json_stringn(request.model.data(), request.model.size()));
    json_t *messages = json_array();
    for (const Message &message : request.messages)
        json_array_append_new(messages, json_pack("{s:s#, s:s#}", "role", message.role.data(), message.role.size(),
                                                  "content", message.content.data(), message.content.size()));
    json_object_set_new(body.get(), "messages", messages);
    if (request.temperature) json_object_set_new(body.get(), "temperature", json_real(*request.temperature));
    if (request.max_tokens) json_object_set_new(body.get(), "max_tokens", json_integer(*request.max_tokens));
    if (!request.output_schema.empty()) {
        if (json_t *schema = json_loads(request.output_schema.c_str(), 0, nullptr))
            json_object_set_new(body.get(), "response_format",
                                json_pack("{s:s, s:{s:s, s:o}}", "type", "json_schema", "json_schema", "name",
                                          "output", "schema", schema));
    }
    if (request.stream) {
        json_object_set_new(body.get(), "stream", json_true());
        json_object_set_new(body.get(), "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    return dump_json(body.get());
}

namespace {
std::optional<Usage> usage_of(const json_t *document) {
    const json_t *usage = json_object_get(document, "usage");
    if (!json_is_object(usage)) return std::nullopt;
    Usage out;
    out.prompt_tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
    out.completion_tokens = json_integer_value(json_object_get(usage, "completion_tokens"));
    // Seed §54.1: a provider that reports only a total has it counted as prompt tokens.
    if (out.prompt_tokens == 0 && out.completion_tokens == 0)
        out.prompt_tokens = json_integer_value(json_object_get(usage, "total_tokens"));
    if (out.prompt_tokens < 0 || out.completion_tokens < 0) return std::nullopt;
    return out;
}

Json parsed(std::string_view text) {
    return Json(json_loadb(text.data(), text.size(), 0, nullptr));
}
}  // namespace

std::optional<StreamChunk> parse_stream_chunk(std::string_view data) {
    Json document = parsed(data);
    if (!json_is_object(document.get())) return std::nullopt;
    StreamChunk chunk;
    chunk.usage = usage_of(document.get());
    const json_t *choices = json_object_get(document.get(), "choices");
    if (!json_is_array(choices)) return chunk.usage ? std::optional(chunk) : std::nullopt;
    if (const json_t *choice = json_array_get(choices, 0)) {
        const json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
        if (json_is_string(content)) chunk.delta.assign(json_string_value(content), json_string_length(content));
        if (const char *finish = json_string_value(json_object_get(choice, "finish_reason"))) chunk.finish_reason = finish;
    }
    return chunk;
}

std::optional<Completion> parse_completion(std::string_view body) {
    Json document = parsed(body);
    const json_t *choice = json_array_get(json_object_get(document.get(), "choices"), 0);
    if (!choice) return std::nullopt;
    Completion completion;
    const json_t *content = json_object_get(json_object_get(choice, "message"), "content");
    if (json_is_string(content)) completion.text.assign(json_string_value(content), json_string_length(content));
    if (const char *finish = json_string_value(json_object_get(choice, "finish_reason"))) completion.finish_reason = finish;
    completion.usage = usage_of(document.get());
    return completion;
}

std::string error_message(std::string_view body) {
    Json document = parsed(body);
    const json_t *message = json_object_get(json_object_get(document.get(), "error"), "message");
    if (json_is_string(message)) return utf8_prefix(json_string_value(message), 500);
    std::string text = utf8_prefix(body, 200);
    return is_valid_utf8(text) ? text : "(an unreadable body)";
}

Json json_in_answer(std::string_view text) {
    if (Json whole{json_loadb(text.data(), text.size(), JSON_DECODE_ANY, nullptr)}) return whole;
    size_t fence = text.find("```");
    size_t start = fence == std::string_view::npos ? std::string_view::npos : text.find('\n', fence);
    size_t end = start == std::string_view::npos ? std::string_view::npos : text.find("```", start);
    if (end != std::string_view::npos)
        if (Json fenced{json_loadb(text.data() + start + 1, end - start - 1, JSON_DECODE_ANY, nullptr)}) return fenced;
    size_t open = text.find('{'), close = text.rfind('}');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return Json();
    return Json(json_loadb(text.data() + open, close - open + 1, 0, nullptr));
}

long long estimate_tokens(std::string_view text) {
    return static_cast<long long>((text.size() + 3) / 4);
}

}  // namespace flowgres::llm
