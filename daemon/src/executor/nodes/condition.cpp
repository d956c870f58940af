// condition: compares two values; its edges leave by "true" or "false" and the other side is
// skipped. Numbers compare as numbers, strings as strings; a comparison of other kinds fails
// the node rather than guess.
#include "executor/nodes/nodes.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/pattern.hpp"

namespace flowgres::executor::nodes {
namespace {

bool is_empty(const json_t *value) {
    return !value || json_is_null(value) || (json_is_string(value) && json_string_length(value) == 0) ||
           (json_is_array(value) && json_array_size(value) == 0) ||
           (json_is_object(value) && json_object_size(value) == 0);
}

bool equal(const json_t *left, const json_t *right) {
    if (json_is_number(left) && json_is_number(right)) return json_number_value(left) == json_number_value(right);
    return json_equal(const_cast<json_t *>(left), const_cast<json_t *>(right));
}

// <0, 0, >0; nullopt when the two cannot be ordered.
std::optional<int> order(const json_t *left, const json_t *right) {
    if (json_is_number(left) && json_is_number(right)) {
        double a = json_number_value(left), b = json_number_value(right);
        return a < b ? -1 : a > b ? 1 : 0;
    }
    if (json_is_string(left) && json_is_string(right))
        return std::string_view(json_string_value(left)).compare(json_string_value(right));
    return std::nullopt;
}

bool contains(const json_t *left, const json_t *right) {
    if (json_is_string(left) && json_is_string(right))
        return std::string_view(json_string_value(left)).find(json_string_value(right)) != std::string_view::npos;
    if (json_is_array(left)) {
        size_t index;
        json_t *item;
        json_array_foreach(const_cast<json_t *>(left), index, item) if (equal(item, right)) return true;
        return false;
    }
    if (json_is_object(left) && json_is_string(right))
        return json_object_get(left, json_string_value(right)) != nullptr;
    return false;
}

// The pattern may come from visitor data through a {{reference}}: RE2 keeps the loop linear
// in the subject whatever the pattern, and both are capped.
bool matches(const json_t *subject, const json_t *pattern_text) {
    std::string error;
    auto pattern = Pattern::compile({json_string_value(pattern_text), json_string_length(pattern_text)}, &error);
    if (!pattern)
        throw Error(ErrorCode::NODE_FAILED, "the pattern " + pattern_problem({json_string_value(pattern_text),
                                                                              json_string_length(pattern_text)}));
    if (json_string_length(subject) > kPatternSubjectMaxBytes)
        throw Error(ErrorCode::NODE_FAILED,
                    "matches checks at most " + std::to_string(kPatternSubjectMaxBytes) + " bytes of text");
    return pattern->search({json_string_value(subject), json_string_length(subject)});
}

}  // namespace

std::unique_ptr<NodeTask> run_condition(NodeCall &call, NodeDone done) {
    try {
        Json left = render_config(call, "left"), right = render_config(call, "right");
        std::string op = json_string_value(json_object_get(call.node.config.get(), "operator"));
        bool result = false;
        if (op == "eq")
            result = equal(left.get(), right.get());
        else if (op == "ne")
            result = !equal(left.get(), right.get());
        else if (op == "empty")
            result = is_empty(left.get());
        else if (op == "not_empty")
            result = !is_empty(left.get());
        else if (op == "contains")
            result = contains(left.get(), right.get());
        else if (op == "matches") {
            if (!json_is_string(left.get()) || !json_is_string(right.get()))
                throw Error(ErrorCode::NODE_FAILED, "matches compares a string with a pattern");
            result = matches(left.get(), right.get());
        } else {
            auto compared = order(left.get(), right.get());
            if (!compared) throw Error(ErrorCode::NODE_FAILED, op + " compares two numbers or two strings");
            result = op == "gt"    ? *compared > 0
                     : op == "gte" ? *compared >= 0
                     : op == "lt"  ? *compared < 0
                                   : *compared <= 0;
        }
        NodeOutcome outcome = NodeOutcome::success(
            Json(json_pack("{s:b, s:O, s:O}", "result", result, "left", left ? left.get() : json_null(), "right",
                           right ? right.get() : json_null())));
        outcome.branch = result;
        done(std::move(outcome));
    } catch (const Error &error) {
        done(NodeOutcome::failure("NODE_FAILED", error.message()));
    }
    return nullptr;
}

}  // namespace flowgres::executor::nodes
