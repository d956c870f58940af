// The filters of a list function (audit rows, wallet movements): one JSON object whose members
// are checked against the names the list knows, each problem collected under its name.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>

#include <jansson.h>

#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"

namespace flowgres {

// A problem for each member of `filters` not in `known`.
void check_known_filters(ValidationProblems &problems, const json_t *filters, std::initializer_list<const char *> known);

// A text filter of 1 to max_length bytes without NUL; nullopt when absent, null or wrong.
std::optional<std::string> string_filter(ValidationProblems &problems, const json_t *filters, const char *key,
                                         size_t max_length);

// An integer filter from 1 to high; `fallback` when absent or wrong.
long long page_filter(ValidationProblems &problems, const json_t *filters, const char *key, long long fallback,
                      long long high);

// The filters argument of a list function at `position`: a JSON object ({} when NULL).
Json filters_argument(const class CallArgs &args, int position);

// The from and to filters: ISO 8601 timestamps, each optional.
struct PeriodFilter {
    std::optional<std::string> from, to;
};
PeriodFilter period_filter(ValidationProblems &problems, const json_t *filters);

// page (from 1) and page_size (from 1 to max_size, default_size when absent).
struct PageFilter {
    long long page = 1, size = 50;
    long long offset() const { return (page - 1) * size; }
};
PageFilter pages_filter(ValidationProblems &problems, const json_t *filters, long long default_size, long long max_size);

}  // namespace flowgres
