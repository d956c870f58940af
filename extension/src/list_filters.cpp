#include "list_filters.hpp"

#include <string_view>

#include "boundary.hpp"
#include "flowgres/fields.hpp"

namespace flowgres {

void check_known_filters(ValidationProblems &problems, const json_t *filters, std::initializer_list<const char *> known) {
    std::string names;
    for (const char *name : known) names += (names.empty() ? "" : ", ") + std::string(name);
    const char *key;
    const json_t *value;
    json_object_foreach(const_cast<json_t *>(filters), key, value) {
        bool found = false;
        for (const char *name : known) found = found || std::string_view(name) == key;
        if (!found) problems.add(key, "is not a known filter (" + names + ")");
    }
}

std::optional<std::string> string_filter(ValidationProblems &problems, const json_t *filters, const char *key,
                                         size_t max_length) {
    const json_t *value = json_object_get(filters, key);
    if (value == nullptr || json_is_null(value)) return std::nullopt;
    if (!json_is_string(value) || json_string_length(value) == 0 || json_string_length(value) > max_length) {
        problems.add(key, "must be a string of 1 to " + std::to_string(max_length) + " characters");
        return std::nullopt;
    }
    std::string text(json_string_value(value), json_string_length(value));
    if (text.find('\0') != std::string::npos) {
        problems.add(key, "must not contain NUL");
        return std::nullopt;
    }
    return text;
}

long long page_filter(ValidationProblems &problems, const json_t *filters, const char *key, long long fallback,
                      long long high) {
    const json_t *value = json_object_get(filters, key);
    if (value == nullptr) return fallback;
    if (!json_is_integer(value) || json_integer_value(value) < 1 || json_integer_value(value) > high) {
        problems.add(key, "must be an integer from 1 to " + std::to_string(high));
        return fallback;
    }
    return json_integer_value(value);
}

Json filters_argument(const CallArgs &args, int position) {
    Json filters = parse_json(args.jsonb(position).value_or("{}"), "filters");
    if (!json_is_object(filters.get())) throw field_error("filters", "must be an object");
    return filters;
}

PeriodFilter period_filter(ValidationProblems &problems, const json_t *filters) {
    PeriodFilter period{string_filter(problems, filters, "from", 64), string_filter(problems, filters, "to", 64)};
    if (period.from && !is_iso8601_timestamp(*period.from)) problems.add("from", "must be an ISO 8601 timestamp");
    if (period.to && !is_iso8601_timestamp(*period.to)) problems.add("to", "must be an ISO 8601 timestamp");
    return period;
}

PageFilter pages_filter(ValidationProblems &problems, const json_t *filters, long long default_size, long long max_size) {
    return PageFilter{page_filter(problems, filters, "page", 1, 1000000),
                      page_filter(problems, filters, "page_size", default_size, max_size)};
}

}  // namespace flowgres
