// The built-in node types and the configuration each requires (README "Workflows and executions"). A type's check
// sees the node's normalised config; common options (timeout, retry_count, retry_delay) are
// checked by the validator for every type.
#include <cctype>
#include <cstring>

#include "flowgres/database_steps.hpp"
#include "flowgres/llm_catalog.hpp"
#include "flowgres/pattern.hpp"
#include "flowgres/workflow.hpp"

namespace flowgres::workflow {
namespace {

const json_t *config_of(const Node &node, const char *key) {
    return json_object_get(node.config.get(), key);
}

void require_string(const Node &node, const std::string &field, Problems &problems, const char *key,
                    size_t max_length = 10000) {
    const json_t *value = config_of(node, key);
    if (!json_is_string(value) || json_string_length(value) == 0 || json_string_length(value) > max_length)
        problems.add(node.id, field + ".config." + key,
                     "is required: a string of 1 to " + std::to_string(max_length) + " characters");
}

bool is_identifier(const char *text) {
    if (!text || !*text) return false;
    if (!std::isalpha(static_cast<unsigned char>(*text)) && *text != '_') return false;
    for (const char *c = text; *c; c++)
        if (!std::isalnum(static_cast<unsigned char>(*c)) && *c != '_') return false;
    return std::strlen(text) <= 64;
}

void check_start(const Node &node, const std::string &field, Problems &problems) {
    std::set<std::string> names;
    for (const Port &port : node.inputs)
        if (!names.insert(port.name).second)
            problems.add(node.id, field + ".inputs", "declares input " + port.name + " twice");
}

void check_input(const Node &node, const std::string &field, Problems &problems) {
    if (!is_identifier(json_string_value(config_of(node, "name"))))
        problems.add(node.id, field + ".config.name", "is required: the input's name (letters, digits, _)");
}

void check_transform(const Node &node, const std::string &field, Problems &problems) {
    const json_t *shape = config_of(node, "template");
    if (!shape) shape = config_of(node, "mapping");
    if (!json_is_object(shape))
        problems.add(node.id, field + ".config.template",
                     "is required: an object whose values may hold {{references}}");
}

const std::set<std::string> &condition_operators() {
    static const std::set<std::string> operators = {"eq",  "ne",       "gt",    "gte",       "lt",
                                                    "lte", "contains", "empty", "not_empty", "matches"};
    return operators;
}

void check_condition(const Node &node, const std::string &field, Problems &problems) {
    const char *op = json_string_value(config_of(node, "operator"));
    if (!op || !condition_operators().count(op)) {
        problems.add(node.id, field + ".config.operator",
                     "must be one of eq, ne, gt, gte, lt, lte, contains, empty, not_empty, matches");
        return;
    }
    if (!config_of(node, "left")) problems.add(node.id, field + ".config.left", "is required");
    std::string_view name = op;
    if (name != "empty" && name != "not_empty" && !config_of(node, "right"))
        problems.add(node.id, field + ".config.right", "is required for operator " + std::string(name));
    if (name == "matches") {
        // A pattern with a {{reference}} is only known at run time, where it is checked again.
        const json_t *right = config_of(node, "right");
        const char *pattern = json_string_value(right);
        if (!pattern) {
            problems.add(node.id, field + ".config.right", "must be a regular expression (a string)");
        } else if (std::string_view text(pattern, json_string_length(right)); text.size() > kPatternMaxLength) {
            problems.add(node.id, field + ".config.right", pattern_problem(text));
        } else if (text.find("{{") == std::string_view::npos) {
            if (std::string problem = pattern_problem(text); !problem.empty())
                problems.add(node.id, field + ".config.right", problem);
        }
    }
}

void check_variable(const Node &node, const std::string &field, Problems &problems) {
    if (!is_identifier(json_string_value(config_of(node, "name"))))
        problems.add(node.id, field + ".config.name", "is required: the variable's name (letters, digits, _)");
    if (!config_of(node, "value")) problems.add(node.id, field + ".config.value", "is required");
}

std::string variable_name(const Node &node) {
    const char *name = json_string_value(config_of(node, "name"));
    return name ? name : "";
}

void check_http(const Node &node, const std::string &field, Problems &problems) {
    static const std::set<std::string> methods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    const char *method = json_string_value(config_of(node, "method"));
    if (method && !methods.count(method))
        problems.add(node.id, field + ".config.method", "must be GET, POST, PUT, PATCH, DELETE or HEAD");
    require_string(node, field, problems, "url", 8192);
    if (const char *url = json_string_value(config_of(node, "url"))) {
        std::string_view text = url;
        if (text.rfind("http://", 0) != 0 && text.rfind("https://", 0) != 0 && text.rfind("{{", 0) != 0)
            problems.add(node.id, field + ".config.url", "must start with http:// or https://");
    }
    if (const json_t *headers = config_of(node, "headers")) {
        if (!json_is_object(headers)) {
            problems.add(node.id, field + ".config.headers", "must be an object of strings");
        } else {
            const char *name;
            json_t *value;
            json_object_foreach(const_cast<json_t *>(headers), name, value) {
                bool token = *name != '\0';
                for (const char *c = name; *c; c++)
                    token &= std::isalnum(static_cast<unsigned char>(*c)) || *c == '-' || *c == '_';
                if (!token)
                    problems.add(node.id, field + ".config.headers",
                                 std::string("header name ") + json_quote(name) + " is not a token");
                if (!json_is_string(value))
                    problems.add(node.id, field + ".config.headers." + name, "must be a string");
            }
        }
    }
    if (const json_t *query = config_of(node, "query")) {
        if (!json_is_object(query)) {
            problems.add(node.id, field + ".config.query", "must be an object of strings (name: value)");
        } else {
            const char *name;
            json_t *value;
            json_object_foreach(const_cast<json_t *>(query), name, value) {
                if (!*name) problems.add(node.id, field + ".config.query", "a parameter name must not be empty");
                if (!json_is_string(value) && !json_is_number(value) && !json_is_boolean(value))
                    problems.add(node.id, field + ".config.query." + name, "must be a string, number or boolean");
            }
        }
    }
    if (const json_t *expected = config_of(node, "expected_status")) {
        auto valid = [](const json_t *code) {
            return json_is_integer(code) && json_integer_value(code) >= 100 && json_integer_value(code) <= 599;
        };
        bool ok = valid(expected);
        if (json_is_array(expected)) {
            ok = json_array_size(expected) > 0;
            size_t index;
            json_t *code;
            json_array_foreach(const_cast<json_t *>(expected), index, code) ok &= valid(code);
        }
        if (!ok)
            problems.add(node.id, field + ".config.expected_status",
                         "must be a status code or a list of them (100 to 599)");
    }
}

// llm (README "The llm step"): a model, or candidates routed by budget or quality, a fallback
// chain, prompts (templates), sampling settings, an output schema, a fallback text, and per
// provider keys ({{secrets.NAME}}: the credential field).
void check_llm(const Node &node, const std::string &field, Problems &problems) {
    auto model_list = [&](const char *key) {
        const json_t *list = config_of(node, key);
        if (!list) return size_t{0};
        if (!json_is_array(list) || json_array_size(list) > 20) {
            problems.add(node.id, field + ".config." + key, "must be a list of at most 20 models");
            return size_t{0};
        }
        size_t index;
        json_t *entry;
        json_array_foreach(const_cast<json_t *>(list), index, entry) {
            const json_t *model = json_is_object(entry) ? json_object_get(entry, "model") : entry;
            const json_t *provider = json_is_object(entry) ? json_object_get(entry, "provider") : nullptr;
            if (!json_is_string(model) || !llm::is_model_id(json_string_value(model)) ||
                (provider && (!json_is_string(provider) || !llm::is_provider_name(json_string_value(provider)))))
                problems.add(node.id, field + ".config." + key + "[" + std::to_string(index) + "]",
                             "must be a model id or {\"model\", \"provider\"}");
        }
        return json_array_size(list);
    };
    const json_t *model = config_of(node, "model");
    size_t candidates = model_list("model_candidates") + model_list("routing_models");
    model_list("fallback_models");
    if (model && (!json_is_string(model) || !llm::is_model_id(json_string_value(model))))
        problems.add(node.id, field + ".config.model", "must be a model id (1 to 200 printable characters)");
    if (!model && candidates == 0)
        problems.add(node.id, field + ".config.model", "is required (or model_candidates to route over)");
    if (const json_t *provider = config_of(node, "provider");
        provider && (!json_is_string(provider) || !llm::is_provider_name(json_string_value(provider))))
        problems.add(node.id, field + ".config.provider", "must be a provider's name");
    if (const json_t *strategy = config_of(node, "routing_strategy")) {
        const char *name = json_string_value(strategy);
        if (!name || (std::string_view(name) != "budget" && std::string_view(name) != "quality"))
            problems.add(node.id, field + ".config.routing_strategy", "must be budget or quality");
    }
    const json_t *user_prompt = config_of(node, "user_prompt");
    if (!user_prompt) user_prompt = config_of(node, "prompt");
    if (!json_is_string(user_prompt) || json_string_length(user_prompt) == 0 || json_string_length(user_prompt) > 100000)
        problems.add(node.id, field + ".config.user_prompt", "is required: a template of 1 to 100000 characters");
    for (const char *key : {"system_prompt", "fallback_text"})
        if (const json_t *text = config_of(node, key); text && (!json_is_string(text) || json_string_length(text) > 100000))
            problems.add(node.id, field + ".config." + key, "must be a string of at most 100000 characters");
    if (const json_t *temperature = config_of(node, "temperature");
        temperature && (!json_is_number(temperature) || json_number_value(temperature) < 0 || json_number_value(temperature) > 2))
        problems.add(node.id, field + ".config.temperature", "must be a number from 0 to 2");
    if (const json_t *max_tokens = config_of(node, "max_tokens");
        max_tokens && (!json_is_integer(max_tokens) || json_integer_value(max_tokens) < 1 || json_integer_value(max_tokens) > 1000000))
        problems.add(node.id, field + ".config.max_tokens", "must be an integer from 1 to 1000000");
    if (const json_t *schema = config_of(node, "output_schema"); schema && !json_is_object(schema))
        problems.add(node.id, field + ".config.output_schema", "must be an object (a JSON Schema)");
    if (const json_t *stream = config_of(node, "stream"); stream && !json_is_boolean(stream))
        problems.add(node.id, field + ".config.stream", "must be true (the default) or false");
    if (const json_t *keys = config_of(node, "api_keys")) {
        const char *name;
        json_t *value;
        if (!json_is_object(keys)) problems.add(node.id, field + ".config.api_keys", "must map provider names to keys");
        else json_object_foreach(const_cast<json_t *>(keys), name, value) {
            if (!llm::is_provider_name(name) || !json_is_string(value))
                problems.add(node.id, field + ".config.api_keys." + name,
                             "must map a provider's name to its key, e.g. \"{{secrets.OPENAI_KEY}}\"");
        }
    }
}

void check_delay(const Node &node, const std::string &field, Problems &problems) {
    const json_t *duration = config_of(node, "duration_ms");
    if (!duration) duration = config_of(node, "duration");
    if (!json_is_integer(duration) || json_integer_value(duration) < 0 || json_integer_value(duration) > 300000)
        problems.add(node.id, field + ".config.duration_ms", "is required: an integer from 0 to 300000 (milliseconds)");
}

void check_output(const Node &node, const std::string &field, Problems &problems) {
    if (const json_t *type = config_of(node, "output_type")) {
        static const std::set<std::string> types = {"text", "json", "table", "chart", "markdown"};
        if (!json_is_string(type) || !types.count(json_string_value(type)))
            problems.add(node.id, field + ".config.output_type", "must be text, json, table, chart or markdown");
    }
    if (const json_t *schema = config_of(node, "output_schema"); schema && !json_is_object(schema))
        problems.add(node.id, field + ".config.output_schema", "must be an object (a JSON Schema)");
}

}  // namespace

const NodeTypeRegistry &NodeTypeRegistry::builtin() {
    static const NodeTypeRegistry registry = [] {
        NodeTypeRegistry types;
        types.add({"start", check_start, {}, false, nullptr});
        types.add({"input", check_input, {}, false, nullptr});
        types.add({"transform", check_transform, {}, false, nullptr});
        types.add({"condition", check_condition, {"true", "false"}, false, nullptr});
        types.add({"variable", check_variable, {}, false, variable_name});
        types.add({"http", check_http, {}, false, nullptr, {"headers", "query"}});
        types.add({"delay", check_delay, {}, false, nullptr});
        types.add({"llm", check_llm, {}, false, nullptr, {"api_keys"}});
        for (const char *type : {"db_select", "db_insert", "db_update", "db_delete", "db_query"})
            types.add({type, database_steps::check, {}, false, nullptr});
        types.add({"output", check_output, {}, true, nullptr});
        types.add({"end", nullptr, {}, true, nullptr});
        return types;
    }();
    return registry;
}

}  // namespace flowgres::workflow
