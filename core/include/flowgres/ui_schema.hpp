// UI schema validation (seed §28, §51, §58): the public form page's description, checked
// when a version is created and used at run time to check a visitor's inputs field by field.
// Only whitelisted block types render; properties that could carry HTML or script are refused
// wherever they appear. Not for: rendering (the page, web/) or the workflow graph.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "flowgres/json.hpp"
#include "flowgres/pattern.hpp"
#include "flowgres/workflow.hpp"

namespace flowgres::ui {

inline constexpr size_t kMaxBlockDepth = 8;
inline constexpr size_t kMaxBlocks = 500;

struct Problem {
    std::string field;  // "blocks[0].children[1].validation.pattern"
    std::string message;
};
using Problems = std::vector<Problem>;

// An input or select block: what feeds one workflow input.
struct InputField {
    std::string input_key;  // input_key, or the block's id when absent
    std::string type;       // "input" or "select"
    std::string path;       // where it sits, for messages
    Json validation;        // {} when none; select options join as its enum
    std::shared_ptr<const Pattern> pattern;  // validation.pattern compiled once; null when absent or invalid
};

struct UiSchema {
    std::string schema_version = "1.0.0";
    std::string layout = "single_column";  // grid or single_column ("stack" is normalised)
    std::vector<InputField> fields;
    std::string result_view = "text";
    bool empty = true;  // {}: no custom UI; the page builds a form from the start inputs
};

// Parses and checks; every problem is appended to `problems`.
UiSchema parse_ui_schema(const json_t *schema, Problems &problems);

// How the UI's fields line up with the workflow's start inputs (seed §28.5).
struct InputMapping {
    std::vector<std::string> mapped;     // start inputs with exactly one field
    std::vector<std::string> missing;    // start inputs with no field
    std::vector<std::string> duplicate;  // input keys used by more than one field
    std::vector<std::string> unmapped;   // fields whose key is no start input
    std::string to_json() const;
};
InputMapping map_inputs(const UiSchema &ui, const std::vector<workflow::Port> &start_inputs);

// Problems a version cannot be saved with: the schema's own, plus duplicate and unmapped
// fields, and required start inputs without a field when the UI declares a form at all.
Problems validate_ui_schema(const json_t *schema, const std::vector<workflow::Port> &start_inputs);

// A visitor's inputs against the fields' rules: required, min and max (length of a string,
// value of a number, items of an array), enum, pattern. Problems are under "inputs.<key>".
Problems validate_inputs(const UiSchema &ui, const json_t *inputs);

}  // namespace flowgres::ui
