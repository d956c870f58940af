// UI schema: structure, whitelist, forbidden properties, input mapping, runtime inputs.
#include "flowgres/ui_schema.hpp"

#include <gtest/gtest.h>

#include "flowgres/json.hpp"

using namespace flowgres;
using namespace flowgres::ui;

namespace {

Problems problems_of(std::string_view schema, std::vector<workflow::Port> inputs = {}) {
    Json document = parse_json(schema, "ui_schema");
    return validate_ui_schema(document.get(), inputs);
}

bool has(const Problems &problems, std::string_view field, std::string_view message = "") {
    for (const auto &problem : problems)
        if (problem.field.find(field) != std::string::npos && problem.message.find(message) != std::string::npos)
            return true;
    return false;
}

std::string dump(const Problems &problems) {
    std::string out;
    for (const auto &problem : problems) out += problem.field + ": " + problem.message + "\n";
    return out;
}

// Seed §51's example, with a select.
const char *kForm = R"json({
  "schema_version": "1.0.0",
  "layout": {"type": "stack", "props": {"gap": 16}},
  "blocks": [{"id": "main_form", "type": "form", "children": [
      {"id": "prompt", "type": "input", "input_key": "prompt", "validation": {"required": true, "min": 2, "max": 10, "pattern": "^[a-z ]+$"}},
      {"id": "tone", "type": "select", "input_key": "tone", "props": {"options": ["dry", {"value": "warm", "label": "Warm"}]}},
      {"id": "count", "type": "input", "validation": {"min": 1, "max": 5}}]}],
  "actions": [{"id": "submit", "type": "submit", "label": "Run"}],
  "result_view": {"type": "markdown", "props": {"content": "### Result\n\n{{output}}"}}
})json";

std::vector<workflow::Port> form_inputs() {
    return {{"prompt", "string", true}, {"tone", "string", false}, {"count", "number", false}};
}

}  // namespace

TEST(UiSchema, TheSeedExampleIsValidAndNormalised) {
    Problems problems;
    Json document = parse_json(kForm, "ui");
    UiSchema ui = parse_ui_schema(document.get(), problems);
    EXPECT_TRUE(problems.empty()) << dump(problems);
    EXPECT_EQ(ui.layout, "single_column") << "stack becomes single_column";
    EXPECT_EQ(ui.fields.size(), 3u);
    EXPECT_EQ(ui.fields[2].input_key, "count") << "the id stands in for a missing input_key";
    EXPECT_EQ(dump_json(json_object_get(ui.fields[1].validation.get(), "enum")), R"(["dry","warm"])");
    EXPECT_TRUE(validate_ui_schema(document.get(), form_inputs()).empty());
    EXPECT_TRUE(problems_of("{}").empty()) << "no UI schema at all is fine";
}

TEST(UiSchema, StructureRules) {
    EXPECT_TRUE(has(problems_of(R"({"schema_version": "2.0.0"})"), "schema_version"));
    EXPECT_TRUE(has(problems_of(R"({"layout": "tabs"})"), "layout"));
    EXPECT_TRUE(has(problems_of(R"({"blocks": [{"type": "iframe"}]})"), "blocks[0].type"));
    EXPECT_TRUE(has(problems_of(R"({"blocks": [{"type": "input"}]})"), "blocks[0].input_key"));
    EXPECT_TRUE(has(problems_of(R"({"blocks": [{"type": "select", "id": "s"}]})"), "props.options"));
    EXPECT_TRUE(has(problems_of(R"({"blocks": [{"type": "input", "id": "a", "validation": {"min": 5, "max": 1}}]})",
                                {{"a", "", false}}),
                    "validation.min"));
    EXPECT_TRUE(has(problems_of(R"({"blocks": [{"type": "input", "id": "a", "validation": {"pattern": "(["}}]})",
                                {{"a", "", false}}),
                    "validation.pattern"));
    EXPECT_TRUE(has(
        problems_of(R"({"blocks": [{"type": "input", "id": "a", "validation": {"regex": "x"}}]})", {{"a", "", false}}),
        "validation.regex"));
    EXPECT_TRUE(has(problems_of(R"({"actions": [{"type": "delete_everything"}]})"), "actions[0].type"));
    EXPECT_TRUE(has(problems_of(R"({"result_view": {"type": "html"}})"), "result_view.type"));
    EXPECT_TRUE(has(problems_of(R"({"colour": "red"})"), "colour"));
    std::string deep = R"({"type": "card"})";
    for (int i = 0; i < 10; i++) deep = R"({"type": "card", "children": [)" + deep + "]}";
    deep = R"({"blocks": [)" + deep + "]}";
    EXPECT_TRUE(has(problems_of(deep), "children", "deeper")) << deep;
}

TEST(UiSchema, ForbiddenPropertiesAnywhere) {
    for (const char *key :
         {"script", "raw_html", "inline_style", "html", "dangerouslySetInnerHTML", "innerHTML", "onClick"}) {
        std::string schema =
            std::string(R"({"blocks": [{"type": "card", "props": {"body": {")") + key + R"(": "x"}}}]})";
        EXPECT_TRUE(has(problems_of(schema), std::string("blocks[0].props.body.") + key, "not allowed")) << key;
    }
    EXPECT_TRUE(has(problems_of(R"x({"blocks": [{"type": "card", "props": {"href": " JavaScript:alert(1)"}}]})x"),
                    "props.href", "script URL"));
    EXPECT_TRUE(
        problems_of(R"({"blocks": [{"type": "markdown", "props": {"content": "<b>shown as text</b>"}}]})").empty());
}

TEST(UiSchema, InputMappingReportsMissingDuplicateAndUnmapped) {
    Problems problems;
    Json document =
        parse_json(R"({"blocks": [{"type": "input", "id": "a"}, {"type": "input", "id": "a2", "input_key": "a"},
        {"type": "input", "id": "stray"}]})",
                   "ui");
    UiSchema ui = parse_ui_schema(document.get(), problems);
    InputMapping mapping = map_inputs(ui, {{"a", "", true}, {"b", "", true}});
    EXPECT_EQ(mapping.to_json(), R"({"mapped":["a"],"missing":["b"],"duplicate":["a"],"unmapped":["stray"]})");
    Problems refused = validate_ui_schema(document.get(), {{"a", "", true}, {"b", "", true}});
    EXPECT_TRUE(has(refused, "input_mapping.a", "more than one")) << dump(refused);
    EXPECT_TRUE(has(refused, "input_mapping.stray", "no input")) << dump(refused);
    EXPECT_TRUE(has(refused, "input_mapping.b", "required")) << dump(refused);
}

TEST(UiSchema, RuntimeInputsAreCheckedFieldByField) {
    Problems parse_problems;
    Json document = parse_json(kForm, "ui");
    UiSchema ui = parse_ui_schema(document.get(), parse_problems);
    auto check = [&](std::string_view inputs) {
        Json parsed = parse_json(inputs, "inputs");
        return validate_inputs(ui, parsed.get());
    };
    EXPECT_TRUE(check(R"({"prompt": "hello", "tone": "warm", "count": 3})").empty());
    EXPECT_TRUE(has(check(R"({"tone": "dry"})"), "inputs.prompt", "required"));
    EXPECT_TRUE(has(check(R"({"prompt": ""})"), "inputs.prompt", "required"));
    EXPECT_TRUE(has(check(R"({"prompt": "a"})"), "inputs.prompt", "at least 2"));
    EXPECT_TRUE(has(check(R"({"prompt": "far too long here"})"), "inputs.prompt", "at most 10"));
    EXPECT_TRUE(has(check(R"({"prompt": "BAD!"})"), "inputs.prompt", "pattern"));
    EXPECT_TRUE(has(check(R"({"prompt": "ok", "tone": "angry"})"), "inputs.tone", "one of"));
    EXPECT_TRUE(has(check(R"({"prompt": "ok", "count": 9})"), "inputs.count", "at most 5"));
    EXPECT_TRUE(has(check(R"([1])"), "inputs", "object"));
    Problems many = check(R"({"prompt": "A", "tone": "x", "count": 0})");
    EXPECT_GE(many.size(), 4u) << dump(many);
}
