// Request → SQL arguments.
#include "arguments.hpp"

#include "flowgres/llm_catalog.hpp"
#include "flowgres/secrets.hpp"

#include <cctype>
#include <set>

#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"

namespace flowgres::daemon {
namespace {

ErrorCode not_found_code(std::string_view parameter) {
    if (parameter == "workspace_id") return ErrorCode::WORKSPACE_NOT_FOUND;
    if (parameter == "app_id") return ErrorCode::APP_NOT_FOUND;
    if (parameter == "version_id" || parameter == "other_version_id") return ErrorCode::VERSION_NOT_FOUND;
    if (parameter == "user_id") return ErrorCode::USER_NOT_FOUND;
    if (parameter == "key_id") return ErrorCode::API_KEY_NOT_FOUND;
    if (parameter == "execution_id") return ErrorCode::EXECUTION_NOT_FOUND;
    if (parameter == "rule_id") return ErrorCode::SAFETY_RULE_NOT_FOUND;
    if (parameter == "trace_id") return ErrorCode::TRACE_NOT_FOUND;
    if (parameter == "conversation_id") return ErrorCode::CONVERSATION_NOT_FOUND;
    return ErrorCode::NOT_FOUND;
}

const char *expected(FieldType type) {
    switch (type) {
        case FieldType::uuid:
            return "must be a UUID string";
        case FieldType::text:
            return "must be a string";
        case FieldType::boolean:
            return "must be true or false";
        case FieldType::integer:
        case FieldType::bigint:
            return "must be an integer";
        case FieldType::timestamp:
            return "must be an ISO 8601 timestamp string";
        case FieldType::json_object:
            return "must be a JSON object";
        case FieldType::json_array:
            return "must be a JSON array";
        case FieldType::json_any:
            return "must be JSON";
    }
    return "has the wrong type";
}

// A JSON body member as the text of its SQL argument; nullopt with a problem when mistyped.
std::optional<std::string> from_json(const json_t *value, FieldType type) {
    switch (type) {
        case FieldType::uuid:
            if (json_is_string(value) && is_uuid(json_string_value(value)))
                return std::string(json_string_value(value));
            return std::nullopt;
        case FieldType::text:
            if (json_is_string(value)) return std::string(json_string_value(value), json_string_length(value));
            return std::nullopt;
        case FieldType::timestamp:
            if (json_is_string(value) && is_iso8601_timestamp(json_string_value(value)))
                return std::string(json_string_value(value));
            return std::nullopt;
        case FieldType::boolean:
            if (json_is_boolean(value)) return std::string(json_is_true(value) ? "true" : "false");
            return std::nullopt;
        case FieldType::integer:
        case FieldType::bigint:
            if (json_is_integer(value)) return std::to_string(json_integer_value(value));
            return std::nullopt;
        case FieldType::json_object:
            if (json_is_object(value)) return dump_json(value);
            return std::nullopt;
        case FieldType::json_array:
            if (json_is_array(value)) return dump_json(value);
            return std::nullopt;
        case FieldType::json_any:
            return dump_json(value);
    }
    return std::nullopt;
}

// A query parameter as its typed JSON value for a filters object, or as SQL argument text.
std::optional<std::string> query_value(const std::string &text, FieldType type, bool as_json) {
    switch (type) {
        case FieldType::integer:
        case FieldType::bigint: {
            if (text.empty() || text.size() > 18) return std::nullopt;
            for (char c : text)
                if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
            return text;
        }
        case FieldType::boolean:
            if (text == "true" || text == "false") return text;
            return std::nullopt;
        case FieldType::uuid:
            if (!is_uuid(text)) return std::nullopt;
            return as_json ? json_quote(text) : text;
        case FieldType::timestamp:
            if (!is_iso8601_timestamp(text)) return std::nullopt;
            return as_json ? json_quote(text) : text;
        default:
            if (!is_valid_utf8(text) || text.find('\0') != std::string::npos) return std::nullopt;
            return as_json ? json_quote(text) : text;
    }
}

bool route_reads_body(const Route &route) {
    for (const Argument &argument : route.arguments)
        if (argument.source == Source::body_field || argument.source == Source::body_document ||
            argument.source == Source::secret_value)
            return true;
    return false;
}

}  // namespace

SqlArguments build_arguments(const Route &route, const RouteMatch &match, const http::Request &request) {
    ValidationProblems problems;

    // Path ids first: a malformed id is simply not found.
    for (const auto &[name, value] : match.path_parameters) {
        for (const Argument &argument : route.arguments)
            if (argument.source == Source::path && name == argument.name && argument.type == FieldType::uuid &&
                !is_uuid(value))
                throw Error(not_found_code(name),
                            name + " " + json_quote(utf8_prefix(value, 80)) + " does not name anything");
    }

    // The body: a JSON object, or nothing at all.
    Json body;
    bool body_present = request.body.find_first_not_of(" \t\r\n") != std::string::npos;
    if (body_present) {
        if (auto type = request.header("content-type")) {
            std::string lowered(*type);
            for (char &c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (lowered.rfind("application/json", 0) != 0)
                throw Error(ErrorCode::UNSUPPORTED_MEDIA_TYPE, "the request body must be application/json");
        }
        if (!is_valid_utf8(request.body)) throw Error(ErrorCode::BAD_REQUEST, "the request body is not valid UTF-8");
        body = parse_json(request.body, "request body");
        if (!json_is_object(body.get())) throw field_error("body", "must be a JSON object");
        // Unknown members are refused, never silently dropped: a misspelt optional field
        // would otherwise look accepted. (body_document routes let the extension judge.)
        bool whole_document = false;
        for (const Argument &argument : route.arguments) whole_document |= argument.source == Source::body_document;
        if (!whole_document) {
            const char *key;
            json_t *value;
            json_object_foreach(body.get(), key, value) {
                bool known = false;
                for (const Argument &argument : route.arguments)
                    known |= (argument.source == Source::body_field || argument.source == Source::secret_value) &&
                             std::string_view(argument.name) == key;
                if (!known)
                    problems.add(
                        key, route_reads_body(route) ? "is not a field of this request" : "this request takes no body");
            }
        }
    }

    // Query parameters: declared ones only, each once.
    auto query = http::parse_query(request.query);
    if (!query) throw Error(ErrorCode::BAD_REQUEST, "the query string has a malformed percent escape");
    std::set<std::string> seen;
    for (const auto &[name, value] : *query) {
        if (!seen.insert(name).second) problems.add(name, "is given more than once");
        bool known = false;
        for (const Argument &argument : route.arguments) {
            if ((argument.source == Source::query_field || argument.source == Source::query_option) && name == argument.name)
                known = true;
            if (argument.source == Source::query_filters)
                for (const Filter &filter : route.filters) known |= name == filter.name;
        }
        if (!known) problems.add(name, "is not a query parameter of this route");
    }

    SqlArguments arguments;
    for (const Argument &argument : route.arguments) {
        std::optional<std::string> value;
        switch (argument.source) {
            case Source::path:
                for (const auto &[name, text] : match.path_parameters)
                    if (name == argument.name) value = text;
                break;
            case Source::body_field: {
                const json_t *member = body ? json_object_get(body.get(), argument.name) : nullptr;
                if (member && !json_is_null(member)) {
                    value = from_json(member, argument.type);
                    if (!value) problems.add(argument.name, expected(argument.type));
                } else if (argument.required) {
                    problems.add(argument.name, "is required");
                }
                break;
            }
            case Source::secret_value: {
                // Kept plain here; seal_secret_values turns it into what SQL takes.
                const json_t *member = body ? json_object_get(body.get(), argument.name) : nullptr;
                if (member && !json_is_null(member)) {
                    size_t length = json_string_length(member);
                    value = json_is_string(member) ? from_json(member, FieldType::text) : std::nullopt;
                    if (!value || length == 0 || length > secrets::kMaxValueBytes)
                        problems.add(argument.name, "must be a string of 1 to " +
                                                        std::to_string(secrets::kMaxValueBytes) + " bytes (no NUL)");
                } else if (argument.required) {
                    problems.add(argument.name, "is required");
                }
                break;
            }
            case Source::body_document:
                if (body)
                    value = dump_json(body.get());
                else
                    problems.add("body", "must be a JSON object with the fields to change");
                break;
            case Source::query_option:
                for (const auto &[name, text] : *query)
                    if (name == argument.name && !query_value(text, argument.type, false))
                        problems.add(argument.name, expected(argument.type));
                continue;  // validated, not an SQL argument
            case Source::query_field:
                for (const auto &[name, text] : *query)
                    if (name == argument.name) {
                        value = query_value(text, argument.type, false);
                        if (!value) problems.add(argument.name, expected(argument.type));
                    }
                if (!value && argument.required) problems.add(argument.name, "is required");
                break;
            case Source::fixed:
                // An empty fixed value is SQL NULL: the route leaves that argument out.
                if (*argument.description) value = argument.description;
                break;
            case Source::query_filters: {
                std::string object = "{";
                for (const Filter &filter : route.filters)
                    for (const auto &[name, text] : *query)
                        if (name == filter.name) {
                            auto typed = query_value(text, filter.type, true);
                            if (!typed) {
                                problems.add(name, expected(filter.type));
                                continue;
                            }
                            if (object.size() > 1) object += ",";
                            object += json_quote(name) + ":" + *typed;
                        }
                value = object + "}";
                break;
            }
        }
        arguments.push_back(std::move(value));
    }
    problems.throw_if_any();
    return arguments;
}

void seal_secret_values(const Route &route, SqlArguments &arguments, const Keyring &keyring) {
    std::string workspace_id, name;
    for (size_t i = 0; i < route.arguments.size() && i < arguments.size(); i++) {
        std::string_view argument = route.arguments[i].name;
        if (argument == "workspace_id" && arguments[i]) workspace_id = *arguments[i];
        if (argument == "name" && arguments[i]) name = *arguments[i];
    }
    for (size_t i = 0; i < route.arguments.size() && i < arguments.size(); i++) {
        const Argument &argument = route.arguments[i];
        if (argument.source != Source::secret_value || !arguments[i]) continue;
        // The name is part of the context: one the extension will refuse is refused here first.
        bool name_ok = std::string_view(argument.seal_context) == "workspace_secret:" ? secrets::is_name(name)
                                                                                        : llm::is_provider_name(name);
        if (!name_ok) throw field_error("name", "is not a valid name here");
        std::string context = std::string(argument.seal_context) + (workspace_id.empty() ? "" : workspace_id + ":") + name;
        std::string plain = std::move(*arguments[i]);
        arguments[i] = "{\"sealed\":" + json_quote(keyring.seal(plain, context)) +
                       ",\"preview\":" + json_quote(secrets::preview(plain)) + "}";
    }
}

}  // namespace flowgres::daemon
