// Provider and model documents (llm_catalog.hpp).
#include "flowgres/llm_catalog.hpp"

#include <set>

#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/secrets.hpp"

namespace flowgres::llm {

bool is_provider_name(std::string_view name) {
    if (name.empty() || name.size() > 63) return false;
    auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!lower_or_digit(name[0])) return false;
    for (char c : name)
        if (!lower_or_digit(c) && c != '-' && c != '_') return false;
    return true;
}

bool is_model_id(std::string_view model) {
    if (model.empty() || model.size() > 200) return false;
    for (char c : model)
        if (c <= ' ' || c > '~') return false;
    return true;
}

bool is_known_protocol(std::string_view protocol) { return protocol == "openai"; }

namespace {

std::optional<long long> integer_in(const json_t *object, const char *key, long long low, long long high,
                                    const std::string &field, ValidationProblems &problems) {
    const json_t *value = json_object_get(object, key);
    if (!value) return std::nullopt;
    if (!json_is_integer(value) || json_integer_value(value) < low || json_integer_value(value) > high) {
        problems.add(field, "must be an integer from " + std::to_string(low) + " to " + std::to_string(high));
        return std::nullopt;
    }
    return json_integer_value(value);
}

std::vector<Model> check_models(const json_t *models, ValidationProblems &problems) {
    std::vector<Model> out;
    if (!json_is_array(models) || json_array_size(models) > kMaxModelsPerProvider) {
        problems.add("models", "must be an array of at most " + std::to_string(kMaxModelsPerProvider) + " models");
        return out;
    }
    static const std::set<std::string> known = {"model", "input_micros_per_1m", "output_micros_per_1m",
                                                "context_tokens", "quality", "enabled"};
    std::set<std::string> seen;
    size_t index;
    json_t *entry;
    json_array_foreach(const_cast<json_t *>(models), index, entry) {
        std::string field = "models[" + std::to_string(index) + "]";
        if (!json_is_object(entry)) {
            problems.add(field, "must be an object with model and its prices");
            continue;
        }
        const char *key;
        json_t *value;
        json_object_foreach(entry, key, value) if (!known.count(key)) problems.add(field + "." + key, "is not a model field");
        Model model;
        const json_t *id = json_object_get(entry, "model");
        if (!json_is_string(id) || !is_model_id(json_string_value(id)))
            problems.add(field + ".model", "is required: 1 to 200 printable characters without spaces");
        else if (!seen.insert(json_string_value(id)).second)
            problems.add(field + ".model", "names a model listed before");
        else
            model.model = json_string_value(id);
        model.input_micros_per_1m = integer_in(entry, "input_micros_per_1m", 0, kMaxPriceMicros,
                                               field + ".input_micros_per_1m", problems)
                                        .value_or(0);
        model.output_micros_per_1m = integer_in(entry, "output_micros_per_1m", 0, kMaxPriceMicros,
                                                field + ".output_micros_per_1m", problems)
                                         .value_or(0);
        model.context_tokens =
            integer_in(entry, "context_tokens", 1, 10000000, field + ".context_tokens", problems).value_or(8192);
        model.quality = integer_in(entry, "quality", 1, 10, field + ".quality", problems).value_or(5);
        if (const json_t *enabled = json_object_get(entry, "enabled")) {
            if (!json_is_boolean(enabled))
                problems.add(field + ".enabled", "must be true or false");
            else
                model.enabled = json_is_true(enabled);
        }
        out.push_back(std::move(model));
    }
    return out;
}

}  // namespace

ProviderFields check_provider(const json_t *document, bool creating, bool workspace_scope) {
    ValidationProblems problems;
    ProviderFields fields;
    if (!json_is_object(document)) {
        problems.add("provider", "must be a JSON object");
        problems.throw_if_any();
    }
    static const std::set<std::string> known = {"name", "protocol", "base_url", "api_key_secret", "timeout_ms",
                                                "enabled", "models"};
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(document), key, value) if (!known.count(key))
        problems.add(key, "is not a provider field");

    auto text = [&](const char *name) -> std::optional<std::string> {
        const json_t *member = json_object_get(document, name);
        if (!member || json_is_null(member)) return std::nullopt;
        if (!json_is_string(member)) {
            problems.add(name, "must be a string");
            return std::nullopt;
        }
        return std::string(json_string_value(member), json_string_length(member));
    };
    fields.name = text("name");
    fields.protocol = text("protocol");
    fields.base_url = text("base_url");
    fields.api_key_secret = text("api_key_secret");
    if (creating) {
        if (!fields.name || !is_provider_name(*fields.name))
            problems.add("name", "is required: lowercase letters, digits, - and _ (at most 63)");
        if (!fields.base_url) problems.add("base_url", "is required: the provider's API root, e.g. https://api.openai.com/v1");
    } else {
        if (json_object_get(document, "name")) problems.add("name", "cannot change: delete the provider and create another");
        if (json_object_get(document, "protocol")) problems.add("protocol", "cannot change");
    }
    if (fields.protocol && !is_known_protocol(*fields.protocol)) problems.add("protocol", "must be openai");
    if (fields.base_url) {
        const std::string &url = *fields.base_url;
        bool scheme = url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
        bool clean = is_valid_utf8(url) && url.find_first_of(" \t\r\n\"<>\\{}|^`") == std::string::npos;
        if (!scheme || !clean || url.size() > 2048 || url.find('?') != std::string::npos ||
            url.find('#') != std::string::npos || url.find('@') != std::string::npos)
            problems.add("base_url", "must be an http:// or https:// URL without credentials, query or fragment (at most 2048)");
    }
    if (fields.api_key_secret) {
        if (!workspace_scope)
            problems.add("api_key_secret", "is for workspace providers: a platform provider holds its key (api_key)");
        else if (!secrets::is_name(*fields.api_key_secret))
            problems.add("api_key_secret", "must name a secret of the workspace");
    }
    fields.timeout_ms = integer_in(document, "timeout_ms", 1000, 600000, "timeout_ms", problems);
    if (const json_t *enabled = json_object_get(document, "enabled")) {
        if (!json_is_boolean(enabled))
            problems.add("enabled", "must be true or false");
        else
            fields.enabled = json_is_true(enabled);
    }
    if (const json_t *models = json_object_get(document, "models")) fields.models = check_models(models, problems);
    problems.throw_if_any();
    return fields;
}

std::string models_json(const std::vector<Model> &models) {
    std::string out = "[";
    for (const Model &model : models) {
        if (out.size() > 1) out += ",";
        out += "{\"model\":" + json_quote(model.model) +
               ",\"input_micros_per_1m\":" + std::to_string(model.input_micros_per_1m) +
               ",\"output_micros_per_1m\":" + std::to_string(model.output_micros_per_1m) +
               ",\"context_tokens\":" + std::to_string(model.context_tokens) +
               ",\"quality\":" + std::to_string(model.quality) + ",\"enabled\":" + (model.enabled ? "true" : "false") + "}";
    }
    return out + "]";
}

}  // namespace flowgres::llm
