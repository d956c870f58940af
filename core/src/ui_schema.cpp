// UI schema parsing, whitelist and blacklist, input mapping and runtime input checks.
#include "flowgres/ui_schema.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <set>

#include "flowgres/pattern.hpp"

namespace flowgres::ui {
namespace {

const std::set<std::string> kBlockTypes = {"form", "input", "select", "table", "card", "chart", "markdown"};
const std::set<std::string> kResultViews = {"text", "table", "chart", "markdown"};
const std::set<std::string> kActionTypes = {"submit", "reset"};

std::string lowercase(std::string text) {
    for (char &c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

// Seed §51.3's list, plus the other ways into HTML: outer HTML, iframe srcdoc, and the DOM's
// event-handler attributes.
bool is_forbidden_key(const std::string &key) {
    static const std::set<std::string> forbidden = {
        "script",    "raw_html",    "inline_style", "html",    "dangerouslysetinnerhtml",
        "innerhtml", "outerhtml",   "srcdoc",       "onclick", "onload",
        "onerror",   "onmouseover", "onfocus",      "onblur",  "onsubmit",
        "onchange",  "oninput",     "onkeydown",    "onkeyup"};
    return forbidden.count(lowercase(key)) > 0;
}

// Keys that can carry HTML, script or event handlers, and javascript: URLs, anywhere.
void forbid_markup(const json_t *value, const std::string &field, Problems &problems) {
    if (json_is_object(value)) {
        const char *key;
        json_t *item;
        json_object_foreach(const_cast<json_t *>(value), key, item) {
            std::string at = field.empty() ? key : field + "." + key;
            if (is_forbidden_key(key))
                problems.push_back({at, "is not allowed: UI schemas carry no HTML, script or inline style"});
            else
                forbid_markup(item, at, problems);
        }
    } else if (json_is_array(value)) {
        size_t index;
        json_t *item;
        json_array_foreach(const_cast<json_t *>(value), index, item)
            forbid_markup(item, field + "[" + std::to_string(index) + "]", problems);
    } else if (json_is_string(value)) {
        std::string text = lowercase(std::string(json_string_value(value), json_string_length(value)));
        text.erase(std::remove_if(text.begin(), text.end(),
                                  [](char c) { return std::isspace(static_cast<unsigned char>(c)); }),
                   text.end());
        if (text.rfind("javascript:", 0) == 0 || text.rfind("vbscript:", 0) == 0 ||
            text.rfind("data:text/html", 0) == 0)
            problems.push_back({field, "must not be a script URL"});
    }
}

bool valid_key(const char *text) {
    if (!text || !*text || std::strlen(text) > 64) return false;
    for (const char *c = text; *c; c++)
        if (!std::isalnum(static_cast<unsigned char>(*c)) && *c != '_' && *c != '-') return false;
    return true;
}

void check_validation(const json_t *validation, const std::string &field, Problems &problems) {
    if (!json_is_object(validation)) {
        problems.push_back({field, "must be an object of rules (required, min, max, enum, pattern)"});
        return;
    }
    const char *key;
    json_t *rule;
    json_object_foreach(const_cast<json_t *>(validation), key, rule) {
        std::string name = key, at = field + "." + key;
        if (name == "required") {
            if (!json_is_boolean(rule)) problems.push_back({at, "must be true or false"});
        } else if (name == "min" || name == "max") {
            if (!json_is_number(rule)) problems.push_back({at, "must be a number"});
        } else if (name == "enum") {
            if (!json_is_array(rule) || json_array_size(rule) == 0)
                problems.push_back({at, "must be a non-empty array"});
        } else if (name == "pattern") {
            const char *pattern = json_string_value(rule);
            if (!pattern)
                problems.push_back({at, "must be a regular expression (a string)"});
            else if (std::string problem = pattern_problem({pattern, json_string_length(rule)}); !problem.empty())
                problems.push_back({at, problem});
        } else {
            problems.push_back({at, "is not a validation rule (required, min, max, enum, pattern)"});
        }
    }
    const json_t *min = json_object_get(validation, "min"), *max = json_object_get(validation, "max");
    if (json_is_number(min) && json_is_number(max) && json_number_value(min) > json_number_value(max))
        problems.push_back({field + ".min", "must not exceed max"});
}

void parse_blocks(const json_t *blocks, const std::string &field, size_t depth, size_t &count, UiSchema &ui,
                  Problems &problems) {
    if (!json_is_array(blocks)) {
        problems.push_back({field, "must be an array of blocks"});
        return;
    }
    if (depth > kMaxBlockDepth) {
        problems.push_back({field, "nests blocks deeper than " + std::to_string(kMaxBlockDepth) + " levels"});
        return;
    }
    size_t index;
    json_t *block;
    json_array_foreach(const_cast<json_t *>(blocks), index, block) {
        std::string at = field + "[" + std::to_string(index) + "]";
        if (++count > kMaxBlocks) {
            problems.push_back({at, "more than " + std::to_string(kMaxBlocks) + " blocks"});
            return;
        }
        if (!json_is_object(block)) {
            problems.push_back({at, "must be an object"});
            continue;
        }
        const char *type = json_string_value(json_object_get(block, "type"));
        if (!type || !kBlockTypes.count(type)) {
            problems.push_back({at + ".type", "must be one of form, input, select, table, card, chart, markdown"});
            continue;
        }
        const json_t *id = json_object_get(block, "id");
        if (id && !valid_key(json_string_value(id)))
            problems.push_back({at + ".id", "must be 1 to 64 letters, digits, _ or -"});
        if (const json_t *props = json_object_get(block, "props"); props && !json_is_object(props))
            problems.push_back({at + ".props", "must be an object"});
        std::string block_type = type;
        if (block_type == "input" || block_type == "select") {
            const char *key = json_string_value(json_object_get(block, "input_key"));
            if (!key) key = json_string_value(id);
            if (!valid_key(key)) {
                problems.push_back({at + ".input_key", "is required (or an id): the workflow input this field feeds"});
            } else {
                InputField input{key, block_type, at, Json(new_json_object()), nullptr};
                if (const json_t *validation = json_object_get(block, "validation")) {
                    check_validation(validation, at + ".validation", problems);
                    if (json_is_object(validation)) input.validation.reset(json_deep_copy(validation));
                    if (const json_t *pattern = json_object_get(validation, "pattern"); json_is_string(pattern))
                        input.pattern = Pattern::compile({json_string_value(pattern), json_string_length(pattern)});
                }
                const json_t *options = json_object_get(json_object_get(block, "props"), "options");
                if (block_type == "select") {
                    if (!json_is_array(options) || json_array_size(options) == 0) {
                        problems.push_back({at + ".props.options", "is required: a non-empty array"});
                    } else if (!json_object_get(input.validation.get(), "enum")) {
                        // An option is either a value or {"value", "label"}; the values are the enum.
                        Json values(json_array());
                        size_t position;
                        json_t *option;
                        json_array_foreach(const_cast<json_t *>(options), position, option) {
                            const json_t *value = json_is_object(option) ? json_object_get(option, "value") : option;
                            if (value) json_array_append(values.get(), const_cast<json_t *>(value));
                        }
                        json_object_set(input.validation.get(), "enum", values.get());
                    }
                }
                ui.fields.push_back(std::move(input));
            }
        }
        if (const json_t *children = json_object_get(block, "children"))
            parse_blocks(children, at + ".children", depth + 1, count, ui, problems);
    }
}

}  // namespace

UiSchema parse_ui_schema(const json_t *schema, Problems &problems) {
    UiSchema ui;
    if (!json_is_object(schema)) {
        problems.push_back({"ui_schema", "must be a JSON object"});
        return ui;
    }
    ui.empty = json_object_size(schema) == 0;
    forbid_markup(schema, "", problems);
    static const std::set<std::string> known = {"schema_version", "layout", "blocks",      "actions",
                                                "result_view",    "title",  "description", "theme"};
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(schema), key, value) if (!known.count(key) && !is_forbidden_key(key))
        problems.push_back({key,
                            "is not a UI schema field (schema_version, layout, blocks, actions, result_view, title, "
                            "description, theme)"});

    if (const json_t *version = json_object_get(schema, "schema_version")) {
        static const auto shape = Pattern::compile(R"(1(\.[0-9]+){0,2})");
        const char *text = json_string_value(version);
        if (!text || !shape->full_match({text, json_string_length(version)}))
            problems.push_back({"schema_version", "must be \"1.0.0\" (major version 1)"});
        else
            ui.schema_version = text;
    }
    if (const json_t *layout = json_object_get(schema, "layout")) {
        const char *type =
            json_is_object(layout) ? json_string_value(json_object_get(layout, "type")) : json_string_value(layout);
        std::string name = type ? type : "";
        if (name == "stack") name = "single_column";
        if (name != "grid" && name != "single_column")
            problems.push_back({"layout", "must be grid or single_column (stack means single_column)"});
        else
            ui.layout = name;
    }
    size_t count = 0;
    if (const json_t *blocks = json_object_get(schema, "blocks"))
        parse_blocks(blocks, "blocks", 1, count, ui, problems);
    if (const json_t *actions = json_object_get(schema, "actions")) {
        if (!json_is_array(actions)) {
            problems.push_back({"actions", "must be an array"});
        } else {
            size_t index;
            json_t *action;
            json_array_foreach(const_cast<json_t *>(actions), index, action) {
                const char *type = json_string_value(json_object_get(action, "type"));
                if (!type || !kActionTypes.count(type))
                    problems.push_back({"actions[" + std::to_string(index) + "].type", "must be submit or reset"});
            }
        }
    }
    if (const json_t *view = json_object_get(schema, "result_view")) {
        const char *type = json_is_object(view) ? json_string_value(json_object_get(view, "type")) : nullptr;
        if (!type || !kResultViews.count(type))
            problems.push_back({"result_view.type", "must be text, table, chart or markdown"});
        else
            ui.result_view = type;
    }
    return ui;
}

std::string InputMapping::to_json() const {
    auto list = [](const std::vector<std::string> &names) {
        std::string out = "[";
        for (const auto &name : names) out += (out.size() > 1 ? "," : "") + json_quote(name);
        return out + "]";
    };
    return "{\"mapped\":" + list(mapped) + ",\"missing\":" + list(missing) + ",\"duplicate\":" + list(duplicate) +
           ",\"unmapped\":" + list(unmapped) + "}";
}

InputMapping map_inputs(const UiSchema &ui, const std::vector<workflow::Port> &start_inputs) {
    InputMapping mapping;
    std::map<std::string, size_t> uses;
    for (const auto &field : ui.fields) uses[field.input_key]++;
    std::set<std::string> inputs;
    for (const auto &port : start_inputs) {
        inputs.insert(port.name);
        if (uses.count(port.name))
            mapping.mapped.push_back(port.name);
        else
            mapping.missing.push_back(port.name);
    }
    for (const auto &[key, count] : uses) {
        if (count > 1) mapping.duplicate.push_back(key);
        if (!inputs.count(key)) mapping.unmapped.push_back(key);
    }
    return mapping;
}

Problems validate_ui_schema(const json_t *schema, const std::vector<workflow::Port> &start_inputs) {
    Problems problems;
    UiSchema ui = parse_ui_schema(schema, problems);
    if (ui.empty) return problems;
    InputMapping mapping = map_inputs(ui, start_inputs);
    for (const auto &key : mapping.duplicate)
        problems.push_back({"input_mapping." + key, "is fed by more than one field"});
    for (const auto &key : mapping.unmapped)
        problems.push_back({"input_mapping." + key, "is no input of the workflow's start node"});
    if (!ui.fields.empty())
        for (const auto &port : start_inputs)
            if (port.required &&
                std::find(mapping.missing.begin(), mapping.missing.end(), port.name) != mapping.missing.end())
                problems.push_back({"input_mapping." + port.name, "is a required workflow input with no field"});
    return problems;
}

Problems validate_inputs(const UiSchema &ui, const json_t *inputs) {
    Problems problems;
    if (!json_is_object(inputs)) {
        problems.push_back({"inputs", "must be a JSON object"});
        return problems;
    }
    for (const auto &field : ui.fields) {
        std::string at = "inputs." + field.input_key;
        const json_t *rules = field.validation.get();
        const json_t *value = json_object_get(inputs, field.input_key.c_str());
        bool blank = !value || json_is_null(value) || (json_is_string(value) && json_string_length(value) == 0);
        if (blank) {
            if (json_is_true(json_object_get(rules, "required"))) problems.push_back({at, "is required"});
            continue;
        }
        double size = 0;
        bool sized = true;
        if (json_is_string(value)) {
            const char *text = json_string_value(value);
            size = 0;
            for (const char *c = text; *c; c++) size += (static_cast<unsigned char>(*c) & 0xC0) != 0x80;  // characters
        } else if (json_is_number(value)) {
            size = json_number_value(value);
        } else if (json_is_array(value)) {
            size = static_cast<double>(json_array_size(value));
        } else {
            sized = false;
        }
        const char *unit = json_is_string(value) ? " characters" : json_is_array(value) ? " items" : "";
        if (const json_t *min = json_object_get(rules, "min");
            sized && json_is_number(min) && size < json_number_value(min))
            problems.push_back({at, "must be at least " + dump_json(min) + unit});
        if (const json_t *max = json_object_get(rules, "max");
            sized && json_is_number(max) && size > json_number_value(max))
            problems.push_back({at, "must be at most " + dump_json(max) + unit});
        if (const json_t *choices = json_object_get(rules, "enum"); json_is_array(choices)) {
            bool found = false;
            size_t index;
            json_t *choice;
            json_array_foreach(const_cast<json_t *>(choices), index, choice) found =
                found || json_equal(choice, const_cast<json_t *>(value));
            if (!found) problems.push_back({at, "must be one of " + dump_json(choices)});
        }
        if (const char *pattern = json_string_value(json_object_get(rules, "pattern"));
            pattern && json_is_string(value)) {
            std::string_view subject(json_string_value(value), json_string_length(value));
            if (!field.pattern)
                problems.push_back({at, "cannot be checked: the pattern is not one RE2 accepts"});
            else if (subject.size() > kPatternSubjectMaxBytes)
                problems.push_back({at, "is too long to check against its pattern (at most " +
                                            std::to_string(kPatternSubjectMaxBytes) + " bytes)"});
            else if (!field.pattern->search(subject))
                problems.push_back({at, "does not match the pattern " + std::string(pattern)});
        }
    }
    return problems;
}

}  // namespace flowgres::ui
