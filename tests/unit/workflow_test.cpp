// Workflow parsing and validation: each rule with a passing and a failing case.
#include "flowgres/workflow.hpp"

#include <gtest/gtest.h>

#include "flowgres/json.hpp"

using namespace flowgres;
using namespace flowgres::workflow;

namespace {

Problems check(std::string_view text) {
    Json document = parse_json(text, "workflow");
    return validate_workflow(document.get());
}

// True when some problem's field contains `field` and its message contains `message`.
bool has(const Problems &problems, std::string_view field, std::string_view message = "") {
    for (const auto &problem : problems.list())
        if (problem.field.find(field) != std::string::npos && problem.message.find(message) != std::string::npos)
            return true;
    return false;
}

std::string dump(const Problems &problems) {
    return problems.to_json();
}

// start(name) → transform → output: valid.
const char *kValid = R"json({
  "nodes": [
    {"id": "start", "type": "start", "data": {"inputs": [{"name": "name", "type": "string", "required": true}]}},
    {"id": "greet", "type": "transform", "data": {"config": {"template": {"greeting": "hello {{name}}"}}}},
    {"id": "out", "type": "output", "config": {"outputType": "json"}}
  ],
  "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "out"}]
})json";

}  // namespace

TEST(Workflow, AValidWorkflowHasNoProblems) {
    Problems problems = check(kValid);
    EXPECT_TRUE(problems.empty()) << dump(problems);
}

TEST(Workflow, NormalisesDataConfigInputsAndCamelCase) {
    Problems problems;
    Json document = parse_json(R"json({"nodes": [{"id": "a", "type": "http", "label": "L",
        "data": {"config": {"maxTokens": 5, "retryCount": 2, "url": "x"}, "inputs": ["q"]},
        "config": {"retryCount": 1}}]})json",
                               "w");
    Workflow workflow = parse_workflow(document.get(), problems);
    ASSERT_EQ(workflow.nodes.size(), 1u);
    const Node &node = workflow.nodes[0];
    EXPECT_EQ(json_integer_value(json_object_get(node.config.get(), "max_tokens")), 5);
    EXPECT_EQ(json_integer_value(json_object_get(node.config.get(), "retry_count")), 1)
        << "node.config wins over data.config";
    EXPECT_EQ(node.inputs.at(0).name, "q");
    EXPECT_EQ(node.label, "L");
    EXPECT_EQ(node_options(node).retry_count, 1);
}

TEST(Workflow, StructureProblems) {
    EXPECT_TRUE(has(check("[]"), "workflow"));
    EXPECT_TRUE(has(check(R"({"nodes": []})"), "nodes", "non-empty"));
    EXPECT_TRUE(has(check(R"({"nodes": [5]})"), "nodes[0]", "object"));
    EXPECT_TRUE(has(check(R"({"nodes": [{"id": "a b", "type": "start"}]})"), "nodes[0].id"));
    EXPECT_TRUE(has(check(R"({"nodes": [{"id": "s", "type": "start"}, {"id": "o", "type": "output"}], "edges": {}})"),
                    "edges", "array"));
    std::string many = R"({"nodes": [)";
    for (size_t i = 0; i <= kMaxNodes; i++)
        many += std::string(i ? "," : "") + R"({"id": "n)" + std::to_string(i) + R"(", "type": "end"})";
    EXPECT_TRUE(has(check(many + "]}"), "nodes", "at most"));
}

TEST(Workflow, IdsAreUniqueAndTypesKnown) {
    Problems problems = check(R"json({"nodes": [{"id": "start", "type": "start"}, {"id": "start", "type": "output"},
        {"id": "x", "type": "teleport"}], "edges": [{"source": "start", "target": "x"}]})json");
    EXPECT_TRUE(has(problems, "nodes[1].id", "another node")) << dump(problems);
    EXPECT_TRUE(has(problems, "nodes[2].type", "must be one of")) << dump(problems);
}

TEST(Workflow, ExactlyOneStartAndAnOutput) {
    EXPECT_TRUE(has(check(R"({"nodes": [{"id": "o", "type": "output"}]})"), "nodes", "exactly one start"));
    EXPECT_TRUE(
        has(check(R"({"nodes": [{"id": "a", "type": "start"}, {"id": "b", "type": "start"}, {"id": "o", "type": "end"}],
        "edges": [{"source": "a", "target": "o"}, {"source": "b", "target": "o"}]})"),
            "nodes", "found 2"));
    EXPECT_TRUE(has(check(R"({"nodes": [{"id": "s", "type": "start"}]})"), "nodes", "output or end"));
}

TEST(Workflow, EdgesNeedExistingNodesAndHandles) {
    Problems problems = check(R"json({"nodes": [
        {"id": "s", "type": "start"},
        {"id": "c", "type": "condition", "config": {"left": 1, "operator": "eq", "right": 1}},
        {"id": "o", "type": "output", "inputs": [{"name": "input"}]},
        {"id": "e", "type": "end"}],
      "edges": [{"source": "s", "target": "c"}, {"source": "c", "sourceHandle": "maybe", "target": "o"},
                {"source": "c", "sourceHandle": "false", "target": "o", "targetHandle": "nope"},
                {"source": "ghost", "target": "e"}, {"source": "o", "target": "e"}, {"source": "s", "target": "s"},
                {"source": "c", "sourceHandle": "true", "target": "e"}]})json");
    EXPECT_TRUE(has(problems, "edges[1].sourceHandle", "true, false")) << dump(problems);
    EXPECT_TRUE(has(problems, "edges[2].targetHandle", "no input")) << dump(problems);
    EXPECT_TRUE(has(problems, "edges[3].source", "ghost")) << dump(problems);
    EXPECT_TRUE(has(problems, "edges[4].source", "ends a path")) << dump(problems);
    EXPECT_TRUE(has(problems, "edges[5]", "itself")) << dump(problems);
    EXPECT_FALSE(has(problems, "edges[6]")) << dump(problems);
}

TEST(Workflow, CyclesAreFound) {
    Problems problems = check(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "a", "type": "delay", "config": {"duration_ms": 1}}, {"id": "b", "type": "delay", "config": {"duration_ms": 1}},
        {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "a"}, {"source": "a", "target": "b"}, {"source": "b", "target": "a"},
                {"source": "b", "target": "o"}]})json");
    EXPECT_TRUE(has(problems, "nodes[1]", "cycle")) << dump(problems);
    EXPECT_TRUE(has(problems, "nodes[2]", "cycle")) << dump(problems);
}

TEST(Workflow, EveryNodeReachableFromStart) {
    Problems problems = check(R"json({"nodes": [{"id": "s", "type": "start"}, {"id": "o", "type": "output"},
        {"id": "island", "type": "end"}], "edges": [{"source": "s", "target": "o"}]})json");
    EXPECT_TRUE(has(problems, "nodes[2]", "cannot be reached")) << dump(problems);
    EXPECT_FALSE(has(problems, "nodes[1]")) << dump(problems);
}

TEST(Workflow, ReferencesMustResolveUpstream) {
    Problems problems = check(R"json({"nodes": [
        {"id": "s", "type": "start", "data": {"inputs": [{"name": "city"}]}},
        {"id": "v", "type": "variable", "config": {"name": "greeting", "value": "hi {{city}}"}},
        {"id": "h", "type": "http", "config": {"url": "https://w.test/{{inputs.city}}?g={{vars.greeting}}&x={{t.value}}"}},
        {"id": "t", "type": "transform", "config": {"template": {"a": "{{h.body}}", "b": "{{start.city}}", "c": "{{nobody}}",
                                                                "d": "{{vars.unset}}", "e": "{{inputs.zip}}"}}},
        {"id": "o", "type": "output", "config": {"value": "{{t.a}} {{broken"}}],
      "edges": [{"source": "s", "target": "v"}, {"source": "v", "target": "h"}, {"source": "h", "target": "t"},
                {"source": "t", "target": "o"}]})json");
    EXPECT_TRUE(has(problems, "nodes[2].config.url", "{{t.value}}: node t is not upstream")) << dump(problems);
    EXPECT_TRUE(has(problems, "nodes[3].config.template.c", "{{nobody}}")) << dump(problems);
    EXPECT_TRUE(has(problems, "nodes[3].config.template.d", "{{vars.unset}}")) << dump(problems);
    EXPECT_TRUE(has(problems, "nodes[3].config.template.e", "{{inputs.zip}}")) << dump(problems);
    EXPECT_FALSE(has(problems, "nodes[3].config.template.a")) << dump(problems);
    EXPECT_FALSE(has(problems, "nodes[3].config.template.b")) << dump(problems);
    EXPECT_FALSE(has(problems, "nodes[1]")) << dump(problems);
    EXPECT_TRUE(has(problems, "nodes[4].config.value", "never closed")) << dump(problems);
    EXPECT_EQ(problems.list().size(), 5u) << dump(problems);
}

TEST(Workflow, NodeConfigRules) {
    auto problems_of = [](std::string node) {
        return check(
            R"({"nodes": [{"id": "s", "type": "start"}, )" + node +
            R"(, {"id": "o", "type": "end"}], "edges": [{"source": "s", "target": "n"}, {"source": "n", "target": "o"}]})");
    };
    EXPECT_TRUE(has(problems_of(R"({"id": "n", "type": "transform"})"), "config.template"));
    EXPECT_TRUE(problems_of(R"({"id": "n", "type": "transform", "config": {"mapping": {}}})").empty());
    EXPECT_TRUE(
        has(problems_of(R"({"id": "n", "type": "condition", "config": {"left": 1, "operator": "like", "right": 2}})"),
            "operator"));
    EXPECT_TRUE(has(problems_of(R"({"id": "n", "type": "condition", "config": {"left": 1, "operator": "gt"}})"),
                    "config.right"));
    EXPECT_TRUE(has(
        problems_of(R"({"id": "n", "type": "condition", "config": {"left": 1, "operator": "matches", "right": "(["}})"),
        "config.right", "regular"));
    EXPECT_FALSE(
        has(problems_of(R"({"id": "n", "type": "condition", "config": {"left": 1, "operator": "empty"}})"), "config"));
    EXPECT_TRUE(
        has(problems_of(R"({"id": "n", "type": "variable", "config": {"name": "1x", "value": 1}})"), "config.name"));
    EXPECT_TRUE(has(problems_of(R"({"id": "n", "type": "http", "config": {"url": "ftp://x", "method": "BREW"}})"),
                    "config.url"));
    EXPECT_TRUE(has(problems_of(R"({"id": "n", "type": "http", "config": {"url": "ftp://x", "method": "BREW"}})"),
                    "config.method"));
    EXPECT_TRUE(has(
        problems_of(R"({"id": "n", "type": "http", "config": {"url": "https://x", "headers": {"A B": "1", "C": 2}}})"),
        "headers"));
    EXPECT_TRUE(
        has(problems_of(R"({"id": "n", "type": "http", "config": {"url": "https://x", "expectedStatus": [200, 700]}})"),
            "expected_status"));
    EXPECT_TRUE(
        problems_of(
            R"({"id": "n", "type": "http", "config": {"url": "https://x", "method": "POST", "expected_status": [200, 201]}})")
            .empty());
    EXPECT_TRUE(has(problems_of(R"({"id": "n", "type": "delay", "config": {"duration_ms": -1}})"), "duration_ms"));
    EXPECT_TRUE(has(problems_of(R"({"id": "n", "type": "input", "config": {}})"), "config.name"));
    EXPECT_TRUE(has(
        problems_of(
            R"({"id": "n", "type": "delay", "config": {"duration_ms": 1, "timeout": 0, "retryCount": 11, "retry_delay": "x"}})"),
        "config.timeout"));
    EXPECT_TRUE(has(problems_of(R"({"id": "n", "type": "delay", "config": {"duration_ms": 1, "retryCount": 11}})"),
                    "config.retry_count"));
    EXPECT_TRUE(
        problems_of(
            R"({"id": "n", "type": "delay", "config": {"duration_ms": 1, "timeout": 500, "retryCount": 3, "retryDelay": 100}})")
            .empty());
}

TEST(Workflow, ReportsEveryProblemAtOnce) {
    Problems problems = check(R"json({"nodes": [{"id": "s", "type": "start"}, {"id": "x", "type": "nope"},
        {"id": "h", "type": "http", "config": {}}], "edges": [{"source": "s", "target": "zzz"}]})json");
    EXPECT_GE(problems.list().size(), 4u) << dump(problems);
    EXPECT_NE(problems.to_json().find("\"node_id\":\"h\""), std::string::npos);
}

TEST(Workflow, TopologicalOrderPutsUpstreamFirst) {
    Problems problems;
    Json document = parse_json(R"json({"nodes": [{"id": "o", "type": "output"}, {"id": "b", "type": "end"},
        {"id": "s", "type": "start"}, {"id": "a", "type": "delay"}],
      "edges": [{"source": "s", "target": "a"}, {"source": "a", "target": "o"}, {"source": "s", "target": "b"}]})json",
                               "w");
    auto order = topological_order(parse_workflow(document.get(), problems));
    auto position = [&](const std::string &id) { return std::find(order.begin(), order.end(), id) - order.begin(); };
    ASSERT_EQ(order.size(), 4u);
    EXPECT_LT(position("s"), position("a"));
    EXPECT_LT(position("a"), position("o"));
    EXPECT_LT(position("s"), position("b"));
}

namespace {
// start(q) → http (with `config`) → output.
std::string http_workflow(std::string_view config) {
    return std::string(R"json({"nodes": [
        {"id": "start", "type": "start", "data": {"inputs": [{"name": "q", "type": "string"}]}},
        {"id": "call", "type": "http", "config": )json") +
           std::string(config) + R"json(},
        {"id": "out", "type": "output"}],
      "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "out"}]})json";
}
}  // namespace

TEST(Workflow, SecretsOnlyInCredentialFields) {
    Problems allowed = check(http_workflow(R"json({"url": "https://api.example.com/x",
        "headers": {"Authorization": "Bearer {{secrets.API_TOKEN}}"}, "query": {"key": "{{secrets.QUERY_KEY}}", "q": "{{q}}"}})json"));
    EXPECT_TRUE(allowed.empty()) << dump(allowed);

    Problems in_url = check(http_workflow(R"json({"url": "https://api.example.com/{{secrets.API_TOKEN}}"})json"));
    EXPECT_TRUE(has(in_url, "nodes[1].config.url", "secrets may only be used in credential fields (http headers and query; llm api_keys)"))
        << dump(in_url);
    Problems in_body = check(http_workflow(R"json({"url": "https://a.example", "body": {"token": "{{secrets.T}}"}})json"));
    EXPECT_TRUE(has(in_body, "nodes[1].config.body.token", "credential fields")) << dump(in_body);

    Problems in_transform = check(R"json({"nodes": [
        {"id": "start", "type": "start"},
        {"id": "leak", "type": "transform", "config": {"template": {"x": "{{secrets.T}}"}}},
        {"id": "out", "type": "output"}],
      "edges": [{"source": "start", "target": "leak"}, {"source": "leak", "target": "out"}]})json");
    EXPECT_TRUE(has(in_transform, "nodes[1].config.template.x", "credential fields")) << dump(in_transform);

    Problems whole = check(http_workflow(R"json({"url": "https://a.example", "headers": {"X": "{{secrets}}"}})json"));
    EXPECT_TRUE(has(whole, "headers.X", "must be {{secrets.NAME}}")) << dump(whole);
    Problems deep = check(http_workflow(R"json({"url": "https://a.example", "headers": {"X": "{{secrets.A.b}}"}})json"));
    EXPECT_TRUE(has(deep, "headers.X", "must be {{secrets.NAME}}")) << dump(deep);
}

TEST(Workflow, SecretsIsAReservedName) {
    Problems node_id = check(R"json({"nodes": [
        {"id": "start", "type": "start"}, {"id": "secrets", "type": "output"}],
      "edges": [{"source": "start", "target": "secrets"}]})json");
    EXPECT_TRUE(has(node_id, "nodes[1].id", "reserved")) << dump(node_id);
    Problems input = check(R"json({"nodes": [
        {"id": "start", "type": "start", "data": {"inputs": [{"name": "secrets"}]}}, {"id": "out", "type": "output"}],
      "edges": [{"source": "start", "target": "out"}]})json");
    EXPECT_TRUE(has(input, "nodes[0].inputs", "reserved")) << dump(input);
}

TEST(Workflow, ReferencedSecretsAreThoseOfCredentialFields) {
    Problems problems;
    Json document = parse_json(http_workflow(R"json({"url": "https://a.example",
        "headers": {"A": "{{secrets.ONE}} and {{secrets.TWO}}"}, "query": {"k": "{{secrets.ONE}}"}})json"),
                               "w");
    Workflow parsed = parse_workflow(document.get(), problems);
    EXPECT_EQ(referenced_secrets(parsed), (std::set<std::string>{"ONE", "TWO"}));
    Json plain = parse_json(kValid, "w");
    EXPECT_TRUE(referenced_secrets(parse_workflow(plain.get(), problems)).empty());
}

TEST(Workflow, HttpQueryIsAnObjectOfScalars) {
    EXPECT_TRUE(has(check(http_workflow(R"json({"url": "https://a.example", "query": "a=1"})json")), "config.query",
                    "must be an object"));
    EXPECT_TRUE(has(check(http_workflow(R"json({"url": "https://a.example", "query": {"a": {"b": 1}}})json")),
                    "config.query.a", "string, number or boolean"));
}
