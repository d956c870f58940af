// The JSON Schema subset the llm step checks answers with.
#include "flowgres/json_schema.hpp"

#include <gtest/gtest.h>

#include "flowgres/json.hpp"

using namespace flowgres;

namespace {
std::string problems(std::string_view value, std::string_view schema) {
    Json v = parse_json(value, "value"), s = parse_json(schema, "schema");
    return describe_schema_problems(check_json_schema(v.get(), s.get()));
}
}  // namespace

TEST(JsonSchema, TheSeedExample) {
    const char *schema = R"({"type":"object","properties":{"summary":{"type":"string"}},"required":["summary"]})";
    EXPECT_EQ(problems(R"({"summary":"short"})", schema), "");
    EXPECT_EQ(problems(R"({})", schema), "$.summary: is required");
    EXPECT_EQ(problems(R"({"summary":3})", schema), "$.summary: must be string");
    EXPECT_EQ(problems(R"("text")", schema), "$: must be object");
}

TEST(JsonSchema, TheSubset) {
    EXPECT_EQ(problems(R"({"a":1,"b":2})", R"({"type":"object","properties":{"a":{}},"additionalProperties":false})"),
              "$.b: is not allowed");
    EXPECT_EQ(problems(R"([1,"x",3])", R"({"type":"array","items":{"type":"integer"},"maxItems":2})"),
              "$: must have at most 2 items; $[1]: must be integer");
    EXPECT_EQ(problems(R"("c")", R"({"enum":["a","b"]})"), "$: must be one of the listed values");
    EXPECT_EQ(problems(R"(null)", R"({"type":["string","null"]})"), "");
    EXPECT_EQ(problems(R"(5)", R"({"type":"number","minimum":6})"), "$: must be at least 6");
    EXPECT_EQ(problems(R"("héllo")", R"({"type":"string","maxLength":5})"), "") << "characters, not bytes";
    EXPECT_EQ(problems(R"(2.0)", R"({"type":"integer"})"), "");
    EXPECT_EQ(problems(R"({"x":1})", R"({"type":"object","unknownKeyword":true})"), "") << "unknown keywords constrain nothing";
}

TEST(JsonSchema, DeepDocumentsAreBounded) {
    std::string value, schema;
    for (int i = 0; i < 100; i++) value += "[", schema += R"({"type":"array","items":)";
    for (int i = 0; i < 100; i++) value += "]";
    schema += "{}";
    for (int i = 0; i < 100; i++) schema += "}";
    EXPECT_NE(problems(value, schema).find("deeper than 32"), std::string::npos);
}
