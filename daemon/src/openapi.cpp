// Builds the OpenAPI document with jansson from routes().
#include "openapi.hpp"

#include "flowgres/secrets.hpp"

#include <cctype>
#include <map>
#include <set>

#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "router.hpp"

namespace flowgres::daemon {
namespace {

json_t *schema_of(FieldType type) {
    switch (type) {
        case FieldType::uuid:
            return json_pack("{s:s, s:s}", "type", "string", "format", "uuid");
        case FieldType::text:
            return json_pack("{s:s}", "type", "string");
        case FieldType::boolean:
            return json_pack("{s:s}", "type", "boolean");
        case FieldType::integer:
            return json_pack("{s:s}", "type", "integer");
        case FieldType::bigint:
            return json_pack("{s:s, s:s}", "type", "integer", "format", "int64");
        case FieldType::timestamp:
            return json_pack("{s:s, s:s}", "type", "string", "format", "date-time");
        case FieldType::json_object:
            return json_pack("{s:s}", "type", "object");
        case FieldType::json_array:
            return json_pack("{s:s}", "type", "array");
        case FieldType::json_any:
            return json_object();
    }
    return json_object();
}

json_t *error_response_ref() {
    return json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "error", "content", "application/json", "schema", "$ref",
                     "#/components/schemas/Error");
}

// Every /api/v1 route can answer these, whatever it does.
const char *kCommonErrors[] = {"UNAUTHENTICATED",   "PERMISSION_DENIED",      "VALIDATION_FAILED", "BAD_REQUEST",
                               "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "DB_UNAVAILABLE",    "INTERNAL_ERROR"};

json_t *operation(const Route &route) {
    json_t *op =
        json_pack("{s:s, s:s, s:[s]}", "operationId", route.operation, "summary", route.summary, "tags", route.tag);
    json_t *parameters = json_array();
    json_t *properties = json_object();
    json_t *required = json_array();
    bool has_body = false, whole_body = false;
    for (const Argument &argument : route.arguments) {
        switch (argument.source) {
            case Source::path:
                json_array_append_new(parameters, json_pack("{s:s, s:s, s:b, s:o}", "name", argument.name, "in", "path",
                                                            "required", 1, "schema", schema_of(argument.type)));
                break;
            case Source::query_option:
            case Source::query_field:
                json_array_append_new(parameters, json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", argument.name, "in",
                                                            "query", "required", argument.required, "description",
                                                            argument.description, "schema", schema_of(argument.type)));
                break;
            case Source::query_filters:
                for (const Filter &filter : route.filters)
                    json_array_append_new(parameters, json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", filter.name, "in",
                                                                "query", "required", 0, "description",
                                                                filter.description, "schema", schema_of(filter.type)));
                break;
            case Source::body_field: {
                has_body = true;
                json_t *schema = schema_of(argument.type);
                if (*argument.description)
                    json_object_set_new(schema, "description", json_string(argument.description));
                json_object_set_new(properties, argument.name, schema);
                if (argument.required) json_array_append_new(required, json_string(argument.name));
                break;
            }
            case Source::secret_value:
                has_body = true;
                json_object_set_new(properties, argument.name,
                                    json_pack("{s:s, s:i, s:i, s:s}", "type", "string", "minLength", 1, "maxLength",
                                              static_cast<int>(secrets::kMaxValueBytes), "description",
                                              argument.description));
                if (argument.required) json_array_append_new(required, json_string(argument.name));
                break;
            case Source::body_document:
                has_body = whole_body = true;
                break;
            case Source::fixed:
                break;
        }
    }
    bool runtime = route.handler == Route::Handler::runtime;
    if (runtime)  // what a visitor may send besides the body (README "Public runtime")
        for (const char *header : {"X-App-Session-Id", "X-App-Captcha-Token"})
            json_array_append_new(parameters, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", header, "in", "header",
                                                        "required", 0, "schema", "type", "string"));
    if (std::string_view(route.method) == "POST" && !runtime)
        json_array_append_new(
            parameters,
            json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:i}}", "name", "Idempotency-Key", "in", "header", "required", 0,
                      "description", "replays the stored response for 24 h; another request with the same key is 409",
                      "schema", "type", "string", "maxLength", 255));
    if (json_array_size(parameters))
        json_object_set_new(op, "parameters", parameters);
    else
        json_decref(parameters);
    if (has_body) {
        json_t *schema = json_pack("{s:s}", "type", "object");
        if (!whole_body) {
            json_object_set_new(schema, "properties", properties);
            json_object_set_new(schema, "additionalProperties", json_false());
            if (json_array_size(required)) json_object_set(schema, "required", required);
        } else {
            json_decref(properties);
            json_object_set_new(schema, "description", json_string("the fields to change; unknown fields are refused"));
        }
        json_object_set_new(
            op, "requestBody",
            json_pack("{s:b, s:{s:{s:o}}}", "required", 1, "content", "application/json", "schema", schema));
    } else {
        json_decref(properties);
    }
    json_decref(required);
    json_t *responses = json_object();
    bool streams = route.handler == Route::Handler::event_stream ||
                   (runtime && std::string_view(route.pattern).ends_with("/events"));
    if (streams)
        json_object_set_new(
            responses, std::to_string(route.success_status).c_str(),
            json_pack("{s:s, s:{s:{s:{s:s, s:s}}}}", "description",
                      "the event stream: \"id: n\", \"event: name\", \"data: JSON\" per event", "content",
                      "text/event-stream", "schema", "type", "string", "description", "Server-Sent Events"));
    else
        json_object_set_new(responses, std::to_string(route.success_status).c_str(),
                            json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "success", "content", "application/json",
                                      "schema", "$ref", "#/components/schemas/Envelope"));
    std::set<std::string> errors(std::begin(kCommonErrors), std::end(kCommonErrors));
    for (const char *code : route.errors) errors.insert(code);
    if (std::string_view(route.method) == "POST" && !runtime) {
        errors.insert("IDEMPOTENCY_CONFLICT");
        errors.insert("IDEMPOTENCY_IN_PROGRESS");
    }
    if (runtime) errors.erase("UNAUTHENTICATED");  // no API key; AUTH_REQUIRED when the app wants a user
    std::map<int, std::string> by_status;
    for (const auto &name : errors) {
        auto code = error_code_from_name(name);
        if (!code) continue;
        std::string &list = by_status[error_info(*code).http_status];
        list += (list.empty() ? "" : ", ") + name;
    }
    for (const auto &[status, names] : by_status) {
        json_t *response = error_response_ref();
        json_object_set_new(response, "description", json_string(names.c_str()));
        json_object_set_new(responses, std::to_string(status).c_str(), response);
    }
    json_object_set_new(op, "responses", responses);
    // A visitor needs no key; a signed-in one sends the identity provider's JWT as a Bearer.
    json_object_set_new(op, "security", runtime ? json_pack("[{}, {s:[]}]", "bearer") : json_pack("[{s:[]}]", "bearer"));
    return op;
}

}  // namespace

std::string openapi_document() {
    json_t *error_names = json_array();
    for (const ErrorInfo *row = error_table_begin(); row != error_table_end(); row++)
        json_array_append_new(error_names, json_stringn(row->name.data(), row->name.size()));
    Json document(json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:{}, s:{s:{s:{s:s, s:s}}, s:{s:o, s:o}}}", "openapi", "3.1.0", "info",
        "title", "flowgres management API and public runtime", "version", "0.2.0", "description",
        "Every management route is one call into the flowgres extension's SQL function of the same meaning; every "
        "/runtime route is one runtime_admit call for a visitor. Responses use the "
        "envelope {code, message, data, trace_id, request_id}; errors add error_code, error_message and data.details. "
        "Unknown body fields and query parameters are refused with 422 VALIDATION_FAILED.",
        "servers", "url", "http://127.0.0.1:8080", "paths", "components", "securitySchemes", "bearer", "type", "http",
        "scheme", "bearer", "schemas", "Envelope",
        json_pack("{s:s, s:[s,s,s,s,s], s:{s:{s:s, s:s}, s:{s:s}, s:{}, s:{s:s}, s:{s:s}}}", "type", "object",
                  "required", "code", "message", "data", "trace_id", "request_id", "properties", "code", "type",
                  "string", "const", "OK", "message", "type", "string", "data", "trace_id", "type", "string",
                  "request_id", "type", "string"),
        "Error",
        json_pack("{s:s, s:[s,s,s,s,s,s,s], s:{s:{s:s, s:o}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, s:{s:{}}}, s:{s:s}, "
                  "s:{s:s}}}",
                  "type", "object", "required", "code", "message", "error_code", "error_message", "data", "trace_id",
                  "request_id", "properties", "code", "type", "string", "enum", error_names, "message", "type",
                  "string", "error_code", "type", "string", "error_message", "type", "string", "data", "type", "object",
                  "properties", "details", "trace_id", "type", "string", "request_id", "type", "string")));
    json_t *paths = json_object_get(document.get(), "paths");
    for (const Route &route : routes()) {
        json_t *item = json_object_get(paths, route.pattern);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, route.pattern, item);
        }
        std::string method = route.method;
        for (char &c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        json_object_set_new(item, method.c_str(), operation(route));
    }
    auto plain = [&](const char *path, const char *id, const char *summary, const char *type) {
        json_t *op =
            json_pack("{s:s, s:s, s:[s], s:{s:{s:s, s:{s:{s:{}}}}}}", "operationId", id, "summary", summary, "tags",
                      "operations", "responses", "200", "description", "success", "content", type, "schema");
        json_object_set_new(paths, path, json_pack("{s:o}", "get", op));
    };
    // The gateway (README "Gateway"): OpenAI's wire protocol, its errors in OpenAI's shape.
    json_object_set_new(paths, "/v1/chat/completions", parse_json(R"json({"post": {
        "operationId": "createChatCompletion", "tags": ["gateway"],
        "summary": "OpenAI chat completions, plain or streamed; paid by the key's workspace (scope llm:execute)",
        "security": [{"bearer": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["model", "messages"],
            "properties": {
                "model": {"type": "string"},
                "messages": {"type": "array", "items": {"type": "object", "required": ["role", "content"],
                             "properties": {"role": {"type": "string"}, "content": {"type": "string"}}}},
                "stream": {"type": "boolean"},
                "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
                "max_tokens": {"type": "integer"}, "max_completion_tokens": {"type": "integer"},
                "temperature": {"type": "number"}, "n": {"type": "integer"}}}}}},
        "responses": {"200": {"description": "a chat.completion, or chat.completion.chunk events"},
                      "400": {"description": "invalid_request_error"}, "401": {"description": "invalid_api_key"},
                      "402": {"description": "insufficient_quota"}, "404": {"description": "model_not_found"},
                      "429": {"description": "rate_limit_exceeded"}, "502": {"description": "upstream_error"}}}})json",
                                                                    "gateway").release());
    json_object_set_new(paths, "/v1/embeddings", parse_json(R"json({"post": {
        "operationId": "createEmbedding", "tags": ["gateway"],
        "summary": "OpenAI embeddings, paid by the key's workspace (scope llm:execute)",
        "security": [{"bearer": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["model", "input"],
            "properties": {"model": {"type": "string"}, "input": {"type": "string"},
                           "encoding_format": {"type": "string"}}}}}},
        "responses": {"200": {"description": "a list of embeddings"},
                      "400": {"description": "invalid_request_error"}, "401": {"description": "invalid_api_key"},
                      "402": {"description": "insufficient_quota"}, "404": {"description": "model_not_found"},
                      "502": {"description": "upstream_error"}}}})json",
                                                              "gateway").release());
    json_object_set_new(paths, "/v1/models", parse_json(R"json({"get": {
        "operationId": "listModels", "tags": ["gateway"], "summary": "The models the key's workspace may use",
        "security": [{"bearer": []}], "responses": {"200": {"description": "{object: list, data}"}}}})json",
                                                          "gateway").release());
    plain("/health", "health", "The process is up", "application/json");
    plain("/ready", "ready", "The database answers (503 DB_UNAVAILABLE when not)", "application/json");
    plain("/metrics", "metrics", "Prometheus metrics", "text/plain");
    plain("/openapi.json", "openapi", "This document", "application/json");
    json_object_set_new(
        json_object_get(json_object_get(paths, "/ready"), "get"), "responses",
        json_pack("{s:{s:s}, s:{s:s, s:{s:{s:{s:s}}}}}", "200", "description", "ready", "503", "description",
                  "DB_UNAVAILABLE", "content", "application/json", "schema", "$ref", "#/components/schemas/Error"));
    return dump_json(document.get());
}

}  // namespace flowgres::daemon
