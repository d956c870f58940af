// A JSON Schema subset for checking what a model answered against a step's output_schema
// (README "The llm step"): type (one or a list), properties, required, additionalProperties
// (true or false), items, enum, const, minLength, maxLength, minimum, maximum, minItems,
// maxItems. Other keywords are ignored, not refused: a schema written for a stricter validator
// still works here, checked as far as this subset goes. Depth is bounded (32), so a hostile
// document or schema costs time linear in its size.
// Not for: the UI schema's field rules (ui_schema.hpp).
#pragma once

#include <jansson.h>

#include <string>
#include <vector>

namespace flowgres {

struct SchemaProblem {
    std::string path;  // "$.items[2].name"
    std::string message;
};

// Every problem of `value` against `schema` (empty: it fits). At most `limit` are reported.
std::vector<SchemaProblem> check_json_schema(const json_t *value, const json_t *schema, size_t limit = 20);

// "$.summary: is required; $.score: must be a number" for a repair prompt or an error message.
std::string describe_schema_problems(const std::vector<SchemaProblem> &problems);

}  // namespace flowgres
