// The filters of a list function (audit rows, wallet movements): one JSON object whose members
// are checked against the names the list knows, each problem collected under its name.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>

#include <jansson.h>

#include "flowgres/errors.hpp"

namespace flowgres {

// A problem for each member of `filters` not in `known`.
void check_known_filters(ValidationProblems &problems, const json_t *filters, std::initializer_list<const char *> known);

// A text filter of 1 to max_length bytes without NUL; nullopt when absent, null or wrong.
std::optional<std::string> string_filter(ValidationProblems &problems, const json_t *filters, const char *key,
                                         size_t max_length);

// An integer filter from 1 to high; `fallback` when absent or wrong.
long long page_filter(ValidationProblems &problems, const json_t *filters, const char *key, long long fallback,
                      long long high);

}  // namespace flowgres
