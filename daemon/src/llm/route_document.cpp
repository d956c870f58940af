#include "llm/route_document.hpp"

#include "flowgres/errors.hpp"
#include "flowgres/secrets.hpp"

namespace flowgres::llm {

std::optional<std::string> open_or_note(const Keyring &keyring, const char *sealed, const std::string &context,
                                        std::string &error_code, std::string &error_message, const std::string &what) {
    try {
        return keyring.open(sealed ? sealed : "", context);
    } catch (const Error &error) {
        error_code = std::string(error_info(error.code()).name);
        error_message = what + " cannot be opened: " + error.message();
        return std::nullopt;
    }
}

OpenedRoute route_from_document(const json_t *entry, const Keyring &keyring, const std::string &workspace_id) {
    auto text = [&](const char *key) {
        const char *value = json_string_value(json_object_get(entry, key));
        return std::string(value ? value : "");
    };
    auto number = [&](const char *key, long long fallback) {
        const json_t *value = json_object_get(entry, key);
        return json_is_integer(value) ? static_cast<long long>(json_integer_value(value)) : fallback;
    };
    OpenedRoute opened;
    Route &route = opened.route;
    route.provider = text("provider");
    route.scope = text("scope");
    route.base_url = text("base_url");
    route.input_micros_per_1m = number("input_micros_per_1m", 0);
    route.output_micros_per_1m = number("output_micros_per_1m", 0);
    route.context_tokens = number("context_tokens", 8192);
    route.quality = number("quality", 5);
    route.timeout_ms = number("timeout_ms", 60000);
    std::string secret = text("api_key_secret");
    opened.key_name = secret.empty() ? "provider:" + route.provider : secret;
    std::optional<std::string> key;
    if (const char *sealed = json_string_value(json_object_get(entry, "sealed_api_key"))) {
        key = open_or_note(keyring, sealed, "platform_llm_provider:" + route.provider, route.key_error_code,
                           route.key_error_message, "the key of provider " + route.provider);
    } else if (!secret.empty()) {
        std::string status = text("secret_status");
        if (status == "active")
            key = open_or_note(keyring, json_string_value(json_object_get(entry, "secret_sealed")),
                               secrets::sealing_context(workspace_id, secret), route.key_error_code,
                               route.key_error_message, "the secret " + secret);
        else if (status == "revoked")
            route.key_error_code = "SECRET_REVOKED", route.key_error_message = "the secret " + secret + " is revoked";
        else if (status == "expired")
            route.key_error_code = "SECRET_EXPIRED", route.key_error_message = "the secret " + secret + " has expired";
        else
            route.key_error_code = "SECRET_NOT_FOUND", route.key_error_message = "the workspace has no secret named " + secret;
    }
    if (key) route.api_key = std::move(*key);
    return opened;
}

}  // namespace flowgres::llm
