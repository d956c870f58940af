// The JSON Schema subset (json_schema.hpp).
#include "flowgres/json_schema.hpp"

#include <cmath>

#include "flowgres/fields.hpp"

namespace flowgres {
namespace {

constexpr int kMaxDepth = 32;

bool has_type(const json_t *value, const char *type) {
    std::string_view name = type;
    if (name == "string") return json_is_string(value);
    if (name == "integer") return json_is_integer(value) || (json_is_real(value) && std::floor(json_real_value(value)) == json_real_value(value));
    if (name == "number") return json_is_number(value);
    if (name == "boolean") return json_is_boolean(value);
    if (name == "object") return json_is_object(value);
    if (name == "array") return json_is_array(value);
    if (name == "null") return json_is_null(value);
    return true;  // an unknown type name constrains nothing here
}

struct Checker {
    std::vector<SchemaProblem> problems;
    size_t limit;

    void add(const std::string &path, std::string message) {
        if (problems.size() < limit) problems.push_back({path, std::move(message)});
    }

    void check(const json_t *value, const json_t *schema, const std::string &path, int depth) {
        if (!json_is_object(schema) || problems.size() >= limit) return;
        if (depth > kMaxDepth) return add(path, "is nested deeper than 32 levels");
        if (const json_t *type = json_object_get(schema, "type")) {
            bool fits = false;
            std::string names;
            if (json_is_string(type)) {
                fits = has_type(value, json_string_value(type));
                names = json_string_value(type);
            } else if (json_is_array(type)) {
                size_t index;
                json_t *entry;
                json_array_foreach(const_cast<json_t *>(type), index, entry) if (json_is_string(entry)) {
                    fits |= has_type(value, json_string_value(entry));
                    names += (names.empty() ? "" : " or ") + std::string(json_string_value(entry));
                }
            } else {
                fits = true;
            }
            if (!fits) return add(path, "must be " + names);
        }
        if (const json_t *options = json_object_get(schema, "enum"); json_is_array(options)) {
            bool found = false;
            size_t index;
            json_t *entry;
            json_array_foreach(const_cast<json_t *>(options), index, entry) found |= json_equal(entry, value);
            if (!found) add(path, "must be one of the listed values");
        }
        if (const json_t *constant = json_object_get(schema, "const"); constant && !json_equal(constant, value))
            add(path, "must be the given constant");
        if (json_is_string(value)) {
            size_t length = utf8_length(std::string_view(json_string_value(value), json_string_length(value)));
            if (const json_t *min = json_object_get(schema, "minLength"); json_is_integer(min) && length < static_cast<size_t>(json_integer_value(min)))
                add(path, "must be at least " + std::to_string(json_integer_value(min)) + " characters");
            if (const json_t *max = json_object_get(schema, "maxLength"); json_is_integer(max) && length > static_cast<size_t>(json_integer_value(max)))
                add(path, "must be at most " + std::to_string(json_integer_value(max)) + " characters");
        }
        if (json_is_number(value)) {
            double number = json_number_value(value);
            if (const json_t *min = json_object_get(schema, "minimum"); json_is_number(min) && number < json_number_value(min))
                add(path, "must be at least " + std::string(json_is_integer(min) ? std::to_string(json_integer_value(min)) : std::to_string(json_real_value(min))));
            if (const json_t *max = json_object_get(schema, "maximum"); json_is_number(max) && number > json_number_value(max))
                add(path, "must be at most " + std::string(json_is_integer(max) ? std::to_string(json_integer_value(max)) : std::to_string(json_real_value(max))));
        }
        if (json_is_object(value)) {
            const json_t *properties = json_object_get(schema, "properties");
            if (const json_t *required = json_object_get(schema, "required"); json_is_array(required)) {
                size_t index;
                json_t *name;
                json_array_foreach(const_cast<json_t *>(required), index, name) if (json_is_string(name) &&
                                                                                     !json_object_get(value, json_string_value(name)))
                    add(path + "." + json_string_value(name), "is required");
            }
            const json_t *additional = json_object_get(schema, "additionalProperties");
            const char *key;
            json_t *member;
            json_object_foreach(const_cast<json_t *>(value), key, member) {
                const json_t *sub = json_object_get(properties, key);
                if (sub)
                    check(member, sub, path + "." + key, depth + 1);
                else if (json_is_false(additional))
                    add(path + "." + key, "is not allowed");
                else if (json_is_object(additional))
                    check(member, additional, path + "." + key, depth + 1);
            }
        }
        if (json_is_array(value)) {
            size_t count = json_array_size(value);
            if (const json_t *min = json_object_get(schema, "minItems"); json_is_integer(min) && count < static_cast<size_t>(json_integer_value(min)))
                add(path, "must have at least " + std::to_string(json_integer_value(min)) + " items");
            if (const json_t *max = json_object_get(schema, "maxItems"); json_is_integer(max) && count > static_cast<size_t>(json_integer_value(max)))
                add(path, "must have at most " + std::to_string(json_integer_value(max)) + " items");
            if (const json_t *items = json_object_get(schema, "items"); json_is_object(items)) {
                size_t index;
                json_t *item;
                json_array_foreach(const_cast<json_t *>(value), index, item)
                    check(item, items, path + "[" + std::to_string(index) + "]", depth + 1);
            }
        }
    }
};

}  // namespace

std::vector<SchemaProblem> check_json_schema(const json_t *value, const json_t *schema, size_t limit) {
    Checker checker{{}, limit};
    checker.check(value, schema, "$", 0);
    return checker.problems;
}

std::string describe_schema_problems(const std::vector<SchemaProblem> &problems) {
    std::string out;
    for (const auto &problem : problems) out += (out.empty() ? "" : "; ") + problem.path + ": " + problem.message;
    return out;
}

}  // namespace flowgres
