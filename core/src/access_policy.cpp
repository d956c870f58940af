// Access-policy validation and merge. Field names follow seed §31 (rate_limit_json,
// blocked_ips, blocked_ip_hashes, gray lists with gray_policy) and §35.1 (data_classification).
#include "flowgres/access_policy.hpp"

#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"

#include <array>
#include <string>

namespace flowgres {
namespace {

constexpr std::array<std::string_view, 3> kAccessModes = {"private", "public_auth", "public_anonymous"};
constexpr std::array<std::string_view, 4> kClassifications = {"public", "internal", "confidential",
                                                              "restricted"};
constexpr std::array<std::string_view, 3> kWindows = {"per_ip", "per_session", "per_app"};
constexpr long long kMaxRequestsCeiling = 1000000;
constexpr long long kWindowSecondsCeiling = 86400;

template <size_t N>
bool is_one_of(const std::array<std::string_view, N> &values, std::string_view text) {
    for (auto value : values)
        if (value == text) return true;
    return false;
}

template <size_t N>
std::string one_of_message(const std::array<std::string_view, N> &values) {
    std::string out = "must be one of";
    for (size_t i = 0; i < N; i++) out += std::string(i == 0 ? " " : ", ") + std::string(values[i]);
    return out;
}

void check_enum(ValidationProblems &problems, std::string_view field, const json_t *value,
                const auto &values) {
    if (!json_is_string(value) || !is_one_of(values, json_string_value(value)))
        problems.add(field, one_of_message(values));
}

void check_integer_range(ValidationProblems &problems, const std::string &field, const json_t *value,
                         long long low, long long high) {
    if (value == nullptr) {
        problems.add(field, "is required");
    } else if (!json_is_integer(value) || json_integer_value(value) < low || json_integer_value(value) > high) {
        problems.add(field, "must be an integer from " + std::to_string(low) + " to " + std::to_string(high));
    }
}

// {max_requests, window_seconds} plus, for the gray policy, require_captcha.
void check_window(ValidationProblems &problems, const std::string &field, const json_t *window,
                  bool allow_captcha) {
    if (!json_is_object(window)) {
        problems.add(field, "must be an object with max_requests and window_seconds");
        return;
    }
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(window), key, value) {
        std::string_view name(key);
        if (name == "max_requests" || name == "window_seconds") continue;
        if (allow_captcha && name == "require_captcha") {
            if (!json_is_boolean(value)) problems.add(field + ".require_captcha", "must be true or false");
            continue;
        }
        problems.add(field + "." + std::string(name), "is not a known field");
    }
    check_integer_range(problems, field + ".max_requests", json_object_get(window, "max_requests"), 1,
                        kMaxRequestsCeiling);
    check_integer_range(problems, field + ".window_seconds", json_object_get(window, "window_seconds"), 1,
                        kWindowSecondsCeiling);
}

bool is_sha256_hex(std::string_view text) {
    if (text.size() != 64) return false;
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

void check_string_list(ValidationProblems &problems, std::string_view field, const json_t *list,
                       size_t max_items, bool (*is_valid)(std::string_view), std::string_view what) {
    if (!json_is_array(list)) {
        problems.add(field, "must be an array");
        return;
    }
    if (json_array_size(list) > max_items) {
        problems.add(field, "must have at most " + std::to_string(max_items) + " entries");
        return;
    }
    size_t index;
    json_t *item;
    json_array_foreach(const_cast<json_t *>(list), index, item) {
        if (!json_is_string(item) || !is_valid(json_string_value(item)))
            problems.add(std::string(field) + "[" + std::to_string(index) + "]", "must be " + std::string(what));
    }
}

void check_number_range(ValidationProblems &problems, const std::string &field, const json_t *value, double low,
                        double high, std::string_view range) {
    if (value == nullptr)
        problems.add(field, "is required");
    else if (!json_is_number(value) || json_number_value(value) < low || json_number_value(value) > high)
        problems.add(field, "must be a number from " + std::string(range));
}

// Seed §31.2's anomaly signals, each turning on a CAPTCHA or shedding load when it fires:
//   high_freq    {max_requests, window_seconds}: one address executing faster than this
//   failure_rate {threshold (0–1), min_requests, window_seconds}: the app's runs failing
//   spike        {factor, min_requests, window_seconds}: this window's executes over factor ×
//                the previous window's
// plus "action": "captcha" (default) or "shed".
void check_anomaly(ValidationProblems &problems, const json_t *anomaly) {
    if (!json_is_object(anomaly)) {
        problems.add("rate_limit.anomaly", "must be an object with high_freq, failure_rate or spike");
        return;
    }
    const char *signal;
    json_t *rule;
    json_object_foreach(const_cast<json_t *>(anomaly), signal, rule) {
        std::string field = "rate_limit.anomaly." + std::string(signal);
        std::string_view name(signal);
        if (name != "high_freq" && name != "failure_rate" && name != "spike") {
            problems.add(field, "is not a known signal (high_freq, failure_rate, spike)");
            continue;
        }
        if (!json_is_object(rule)) {
            problems.add(field, "must be an object");
            continue;
        }
        const char *key;
        json_t *value;
        json_object_foreach(rule, key, value) {
            std::string_view member(key);
            bool known = member == "window_seconds" || member == "action" ||
                         (name == "high_freq" ? member == "max_requests"
                                              : member == "min_requests" ||
                                                    member == (name == "spike" ? "factor" : "threshold"));
            if (!known) problems.add(field + "." + std::string(key), "is not a known field");
        }
        check_integer_range(problems, field + ".window_seconds", json_object_get(rule, "window_seconds"), 1,
                            kWindowSecondsCeiling);
        if (name == "high_freq")
            check_integer_range(problems, field + ".max_requests", json_object_get(rule, "max_requests"), 1,
                                kMaxRequestsCeiling);
        else
            check_integer_range(problems, field + ".min_requests", json_object_get(rule, "min_requests"), 1,
                                kMaxRequestsCeiling);
        if (name == "failure_rate") check_number_range(problems, field + ".threshold", json_object_get(rule, "threshold"), 0.01, 1,
                               "0.01 to 1");
        if (name == "spike") check_number_range(problems, field + ".factor", json_object_get(rule, "factor"), 1.1, 1000,
                               "1.1 to 1000");
        const json_t *action = json_object_get(rule, "action");
        if (action && !(json_is_string(action) && (std::string_view(json_string_value(action)) == "captcha" ||
                                                   std::string_view(json_string_value(action)) == "shed")))
            problems.add(field + ".action", "must be captcha or shed");
    }
}

Json merge_rate_limit(ValidationProblems &problems, const json_t *current, const json_t *patch) {
    Json merged(json_is_object(current) ? json_deep_copy(current) : new_json_object());
    if (!json_is_object(patch)) {
        problems.add("rate_limit", "must be an object with per_ip, per_session, per_app or anomaly");
        return merged;
    }
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(patch), key, value) {
        std::string field = "rate_limit." + std::string(key);
        if (std::string_view(key) == "anomaly") {
            if (json_is_null(value)) {
                json_object_del(merged.get(), key);
            } else {
                check_anomaly(problems, value);
                json_object_set(merged.get(), key, value);
            }
        } else if (!is_one_of(kWindows, key)) {
            problems.add(field, "is not a known field (per_ip, per_session, per_app, anomaly)");
        } else if (json_is_null(value)) {
            json_object_del(merged.get(), key);
        } else {
            check_window(problems, field, value, false);
            json_object_set(merged.get(), key, value);
        }
    }
    return merged;
}

}  // namespace

Json default_access_policy() {
    Json policy(json_pack("{s:s, s:s, s:{s:{s:I, s:I}}, s:[], s:b, s:[], s:[], s:[], s:[], s:n}",
                          "access_mode", "private", "data_classification", "public", "rate_limit", "per_ip",
                          "max_requests", (json_int_t)kDefaultPerIpRequests, "window_seconds",
                          (json_int_t)kDefaultPerIpWindowSeconds, "allowed_origins", "require_captcha", 0,
                          "blocked_ips", "blocked_ip_hashes", "gray_ips", "gray_ip_hashes", "gray_policy"));
    return policy;
}

Json merge_access_policy(const json_t *current, const json_t *patch) {
    ValidationProblems problems;
    if (!json_is_object(patch)) {
        problems.add("access_policy", "must be an object");
        problems.throw_if_any();
    }
    Json merged(json_is_object(current) ? json_deep_copy(current) : default_access_policy().release());

    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(patch), key, value) {
        std::string_view name(key);
        if (name == "access_mode") {
            check_enum(problems, name, value, kAccessModes);
        } else if (name == "data_classification") {
            check_enum(problems, name, value, kClassifications);
        } else if (name == "rate_limit") {
            Json rate_limit = merge_rate_limit(problems, json_object_get(merged.get(), "rate_limit"), value);
            json_object_set(merged.get(), key, rate_limit.get());
            continue;
        } else if (name == "allowed_origins") {
            check_string_list(problems, name, value, kMaxAllowedOrigins, is_origin,
                              "an origin such as https://example.com, or *");
        } else if (name == "require_captcha") {
            if (!json_is_boolean(value)) problems.add(name, "must be true or false");
        } else if (name == "blocked_ips" || name == "gray_ips") {
            check_string_list(problems, name, value, kMaxListedAddresses, is_ip_or_cidr,
                              "an IP address or CIDR block");
        } else if (name == "blocked_ip_hashes" || name == "gray_ip_hashes") {
            check_string_list(problems, name, value, kMaxListedAddresses, is_sha256_hex,
                              "a lowercase hex SHA-256 digest");
        } else if (name == "gray_policy") {
            if (!json_is_null(value)) check_window(problems, "gray_policy", value, true);
        } else {
            problems.add(name, "is not a known field");
            continue;
        }
        json_object_set(merged.get(), key, value);
    }

    // §35.1: anything above public needs a signed-in member, so it cannot be anonymous.
    const char *mode = json_string_value(json_object_get(merged.get(), "access_mode"));
    const char *classification = json_string_value(json_object_get(merged.get(), "data_classification"));
    if (problems.empty() && mode != nullptr && classification != nullptr &&
        std::string_view(mode) == "public_anonymous" && std::string_view(classification) != "public")
        problems.add("data_classification", "must be public when access_mode is public_anonymous");

    problems.throw_if_any();
    return merged;
}

}  // namespace flowgres
