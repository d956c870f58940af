// The executor on a real libuv loop: order, concurrency, skipping, retries, timeouts, cancel.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <chrono>

#include "executor/engine.hpp"
#include "executor/http_client.hpp"
#include "flowgres/json.hpp"

using namespace flowgres;
using namespace flowgres::executor;

namespace {

struct Outcome {
    RunResult result;
    long long elapsed_ms = 0;
};

std::shared_ptr<const workflow::Workflow> parse(std::string_view text) {
    Json document = parse_json(text, "workflow");
    workflow::Problems problems = workflow::validate_workflow(document.get());
    EXPECT_TRUE(problems.empty()) << problems.to_json();
    workflow::Problems ignored;
    return std::make_shared<workflow::Workflow>(workflow::parse_workflow(document.get(), ignored));
}

Outcome run(std::string_view workflow_text, std::string_view inputs = "{}", RunOptions options = {},
            const NodeRunners &runners = NodeRunners::builtin(), long long cancel_after_ms = -1) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    Outcome outcome;
    bool finished = false;
    auto started = std::chrono::steady_clock::now();
    auto execution = Run::start(
        &loop, parse(workflow_text), parse_json(inputs, "inputs"), options,
        [&](RunResult &&result) {
            outcome.result = std::move(result);
            finished = true;
        },
        runners);
    uv_timer_t canceller;
    uv_timer_init(&loop, &canceller);
    canceller.data = execution.get();
    if (cancel_after_ms >= 0)
        uv_timer_start(
            &canceller, [](uv_timer_t *timer) { static_cast<Run *>(timer->data)->cancel(); },
            static_cast<uint64_t>(cancel_after_ms), 0);
    while (!finished && uv_run(&loop, UV_RUN_ONCE)) {
    }
    outcome.elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    uv_close(reinterpret_cast<uv_handle_t *>(&canceller), nullptr);
    execution.reset();
    uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks of whatever the run left behind
    EXPECT_EQ(uv_loop_close(&loop), 0) << "the run leaked loop handles";
    EXPECT_TRUE(finished);
    return outcome;
}

std::string status_of(const RunResult &result, const std::string &node_id) {
    std::string statuses;
    for (const auto &log : result.logs)
        if (log.node_id == node_id) statuses += (statuses.empty() ? "" : ",") + log.status;
    return statuses;
}

}  // namespace

TEST(Executor, RunsInDependencyOrderWithTemplates) {
    Outcome outcome = run(R"json({"nodes": [
        {"id": "start", "type": "start", "data": {"inputs": [{"name": "name"}, {"name": "n"}]}},
        {"id": "greet", "type": "transform", "config": {"template": {"greeting": "hello {{name}}", "n": "{{inputs.n}}"}}},
        {"id": "out", "type": "output", "config": {"value": "{{greet.greeting}}!"}}],
      "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "out"}]})json",
                          R"({"name": "Ada", "n": 3})");
    EXPECT_EQ(outcome.result.status, "completed");
    EXPECT_EQ(dump_json(outcome.result.outputs.get()), R"({"out":"hello Ada!"})");
    ASSERT_EQ(outcome.result.logs.size(), 3u);
    EXPECT_EQ(outcome.result.logs[0].node_id, "start");
    EXPECT_EQ(dump_json(outcome.result.logs[1].output.get()), R"({"greeting":"hello Ada","n":3})");
}

TEST(Executor, IndependentBranchesRunConcurrently) {
    Outcome outcome = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "a", "type": "delay", "config": {"duration_ms": 200}}, {"id": "b", "type": "delay", "config": {"duration_ms": 200}},
        {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "a"}, {"source": "s", "target": "b"}, {"source": "a", "target": "o"},
                {"source": "b", "target": "o"}]})json");
    EXPECT_EQ(outcome.result.status, "completed");
    EXPECT_GE(outcome.elapsed_ms, 190);
    EXPECT_LT(outcome.elapsed_ms, 380) << "two 200 ms branches ran one after the other";
    EXPECT_EQ(dump_json(outcome.result.outputs.get()), R"({"o":[{"waited_ms":200},{"waited_ms":200}]})");
}

TEST(Executor, ConditionSkipsTheUntakenSideAndWhatOnlyItLeadsTo) {
    const char *graph = R"json({"nodes": [
        {"id": "s", "type": "start", "data": {"inputs": [{"name": "age"}]}},
        {"id": "adult", "type": "condition", "config": {"left": "{{age}}", "operator": "gte", "right": 18}},
        {"id": "yes", "type": "transform", "config": {"template": {"verdict": "welcome"}}},
        {"id": "no", "type": "transform", "config": {"template": {"verdict": "too young"}}},
        {"id": "no_more", "type": "delay", "config": {"duration_ms": 1}},
        {"id": "o1", "type": "output"}, {"id": "o2", "type": "output"}],
      "edges": [{"source": "s", "target": "adult"}, {"source": "adult", "sourceHandle": "true", "target": "yes"},
                {"source": "adult", "sourceHandle": "false", "target": "no"}, {"source": "no", "target": "no_more"},
                {"source": "yes", "target": "o1"}, {"source": "no_more", "target": "o2"}]})json";
    Outcome adult = run(graph, R"({"age": 30})");
    EXPECT_EQ(adult.result.status, "completed");
    EXPECT_EQ(status_of(adult.result, "yes"), "completed");
    EXPECT_EQ(status_of(adult.result, "no"), "skipped");
    EXPECT_EQ(status_of(adult.result, "no_more"), "skipped");
    EXPECT_EQ(status_of(adult.result, "o2"), "skipped");
    EXPECT_EQ(dump_json(adult.result.outputs.get()), R"({"o1":{"verdict":"welcome"}})");
    Outcome child = run(graph, R"({"age": 9})");
    EXPECT_EQ(status_of(child.result, "yes"), "skipped");
    EXPECT_EQ(dump_json(child.result.outputs.get()), R"({"o2":{"waited_ms":1}})");
}

namespace {
int flaky_calls = 0;
std::unique_ptr<NodeTask> run_flaky(NodeCall &, NodeDone done) {
    if (++flaky_calls < 3)
        done(NodeOutcome::failure("NODE_FAILED", "not yet"));
    else
        done(NodeOutcome::success(Json(json_string("finally"))));
    return nullptr;
}
}  // namespace

TEST(Executor, RetriesWithDelayThenSucceeds) {
    NodeRunners runners = NodeRunners::builtin();
    runners.add("delay", run_flaky);  // stands in for an upstream that fails twice
    flaky_calls = 0;
    Outcome outcome = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "f", "type": "delay", "config": {"duration_ms": 1, "retryCount": 2, "retryDelay": 50}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "f"}, {"source": "f", "target": "o"}]})json",
                          "{}", {}, runners);
    EXPECT_EQ(outcome.result.status, "completed");
    EXPECT_EQ(status_of(outcome.result, "f"), "failed,failed,completed");
    EXPECT_GE(outcome.elapsed_ms, 95) << "two retry delays of 50 ms";
    flaky_calls = -10;
    Outcome exhausted = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "f", "type": "delay", "config": {"duration_ms": 1, "retryCount": 1}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "f"}, {"source": "f", "target": "o"}]})json",
                            "{}", {}, runners);
    EXPECT_EQ(exhausted.result.status, "failed");
    EXPECT_EQ(status_of(exhausted.result, "f"), "failed,failed");
    EXPECT_EQ(std::string(json_string_value(json_object_get(exhausted.result.error.get(), "node_id"))), "f");
}

TEST(Executor, NodeAndRunTimeouts) {
    Outcome node = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "slow", "type": "delay", "config": {"duration_ms": 2000, "timeout": 50}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "slow"}, {"source": "slow", "target": "o"}]})json");
    EXPECT_EQ(node.result.status, "failed");
    EXPECT_EQ(std::string(json_string_value(json_object_get(node.result.error.get(), "error_code"))), "NODE_TIMEOUT");
    EXPECT_LT(node.elapsed_ms, 1000);
    RunOptions short_run;
    short_run.timeout_ms = 60;
    Outcome whole = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "slow", "type": "delay", "config": {"duration_ms": 2000}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "slow"}, {"source": "slow", "target": "o"}]})json",
                        "{}", short_run);
    EXPECT_EQ(std::string(json_string_value(json_object_get(whole.result.error.get(), "error_code"))),
              "EXECUTION_TIMEOUT");
    EXPECT_LT(whole.elapsed_ms, 1000);
}

TEST(Executor, CancelStopsInFlightNodes) {
    Outcome outcome = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "slow", "type": "delay", "config": {"duration_ms": 2000}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "slow"}, {"source": "slow", "target": "o"}]})json",
                          "{}", {}, NodeRunners::builtin(), 40);
    EXPECT_EQ(outcome.result.status, "cancelled");
    EXPECT_LT(outcome.elapsed_ms, 1000);
    EXPECT_EQ(status_of(outcome.result, "slow"), "") << "an aborted node reports nothing";
}

TEST(Executor, VariablesAreSetUpdatedAndRecorded) {
    Outcome outcome = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "v1", "type": "variable", "config": {"name": "count", "value": 1}},
        {"id": "v2", "type": "variable", "config": {"name": "count", "value": "{{vars.count}}0"}},
        {"id": "o", "type": "output", "config": {"value": "{{vars.count}}"}}],
      "edges": [{"source": "s", "target": "v1"}, {"source": "v1", "target": "v2"}, {"source": "v2", "target": "o"}]})json");
    EXPECT_EQ(dump_json(outcome.result.outputs.get()), R"({"o":"10"})");
    EXPECT_EQ(dump_json(outcome.result.logs[1].variables.get()), R"([{"op":"set","name":"count","value":1}])");
    EXPECT_EQ(dump_json(outcome.result.logs[2].variables.get()), R"([{"op":"update","name":"count","value":"10"}])");
}

TEST(Executor, NodeTypesWithoutARunnerFailBeforeStarting) {
    NodeRunners only_ends;
    only_ends.add("start", NodeRunners::builtin().find("start"));
    only_ends.add("output", NodeRunners::builtin().find("output"));
    Outcome outcome = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "d", "type": "delay", "config": {"duration_ms": 1}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "d"}, {"source": "d", "target": "o"}]})json",
                          "{}", {}, only_ends);
    EXPECT_EQ(outcome.result.status, "failed");
    EXPECT_TRUE(outcome.result.logs.empty());
    EXPECT_NE(dump_json(outcome.result.error.get()).find("cannot run"), std::string::npos);
}

TEST(Executor, HttpStepsMayNotReachSpecialAddressesUnlessAllowListed) {
    for (const char *url : {"http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
                            "http://[::1]:9/", "http://[::ffff:192.168.1.1]/", "http://0.0.0.0/"}) {
        std::string graph = std::string(R"json({"nodes": [{"id": "s", "type": "start"},
            {"id": "h", "type": "http", "config": {"url": ")json") +
                            url + R"json("}}, {"id": "o", "type": "output"}],
          "edges": [{"source": "s", "target": "h"}, {"source": "h", "target": "o"}]})json";
        Outcome outcome = run(graph);
        EXPECT_EQ(outcome.result.status, "failed") << url;
        EXPECT_STREQ(json_string_value(json_object_get(outcome.result.error.get(), "error_code")), "EGRESS_DENIED")
            << url;
    }
    RunOptions https;
    Outcome refused = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "h", "type": "http", "config": {"url": "https://example.test/"}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "h"}, {"source": "h", "target": "o"}]})json",
                          "{}", https);
    EXPECT_NE(dump_json(refused.result.error.get()).find("https"), std::string::npos);
}

TEST(Egress, ClassifiesAndAllowLists) {
    auto v4 = [](const char *text) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        inet_pton(AF_INET, text, &address.sin_addr);
        return address;
    };
    EgressPolicy none;
    for (const char *blocked : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1",
                                "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255"}) {
        auto address = v4(blocked);
        EXPECT_FALSE(none.allowed(reinterpret_cast<sockaddr *>(&address))) << blocked;
    }
    for (const char *open : {"8.8.8.8", "172.32.0.1", "93.184.216.34"}) {
        auto address = v4(open);
        EXPECT_TRUE(none.allowed(reinterpret_cast<sockaddr *>(&address))) << open;
    }
    EgressPolicy loopback = EgressPolicy::parse("127.0.0.0/8, ::1");
    auto local = v4("127.0.0.5");
    auto metadata = v4("169.254.169.254");
    EXPECT_TRUE(loopback.allowed(reinterpret_cast<sockaddr *>(&local)));
    EXPECT_FALSE(loopback.allowed(reinterpret_cast<sockaddr *>(&metadata)));
    EXPECT_THROW(EgressPolicy::parse("localhost"), std::invalid_argument);
    EXPECT_THROW(EgressPolicy::parse("10.0.0.0/40"), std::invalid_argument);
}

TEST(Egress, IPv6AddressesThatCarryIPv4OrAreSpecialAreJudgedByWhatTheyReach) {
    auto v6 = [](const char *text) {
        sockaddr_in6 address{};
        address.sin6_family = AF_INET6;
        EXPECT_EQ(inet_pton(AF_INET6, text, &address.sin6_addr), 1) << text;
        return address;
    };
    EgressPolicy none;
    for (const char *blocked : {"::1", "::", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::10.0.0.1",
                                "64:ff9b::a9fe:a9fe", "64:ff9b::127.0.0.1", "::10.0.0.1", "::8.8.8.8",
                                "2002:0a00:0001::1", "2002:7f00:0001::", "2002:a9fe:a9fe::1", "fec0::1",
                                "feff::1", "64:ff9b:1::8.8.8.8", "fc00::1", "fe80::1", "ff02::1"}) {
        auto address = v6(blocked);
        EXPECT_FALSE(none.allowed(reinterpret_cast<sockaddr *>(&address))) << blocked;
    }
    for (const char *open : {"2606:4700::1111", "64:ff9b::8.8.8.8", "2002:0808:0808::1", "::ffff:8.8.8.8"}) {
        auto address = v6(open);
        EXPECT_TRUE(none.allowed(reinterpret_cast<sockaddr *>(&address))) << open;
    }
}

TEST(HttpUrl, ParsesAndRefusesTricks) {
    ParsedUrl url;
    ASSERT_TRUE(parse_url("http://api.test:8080/v1/items?q=a%20b#frag", url));
    EXPECT_EQ(url.host, "api.test");
    EXPECT_EQ(url.port, 8080);
    EXPECT_EQ(url.path, "/v1/items?q=a%20b");
    ASSERT_TRUE(parse_url("http://[::1]/", url));
    EXPECT_EQ(url.host, "::1");
    EXPECT_EQ(url.port, 80);
    ASSERT_TRUE(parse_url("https://x.test?y=1", url));
    EXPECT_EQ(url.path, "/?y=1");
    for (const char *bad : {"ftp://x/", "http://", "http://user:pw@internal/", "http://x:0/", "http://x:99999/",
                            "http://x/a b", "http://x/a\r\nHost: evil", "/relative"})
        EXPECT_FALSE(parse_url(bad, url)) << bad;
}

TEST(Executor, NodeLogsSerialiseForNodeLogsAppend) {
    NodeLog log;
    log.node_id = "a";
    log.node_type = "delay";
    log.status = "skipped";
    Json parsed = parse_json(log.to_json(), "log");
    EXPECT_STREQ(json_string_value(json_object_get(parsed.get(), "status")), "skipped");
    EXPECT_TRUE(json_is_null(json_object_get(parsed.get(), "started_at")));
}

TEST(Executor, TellsEachNodeStartAndFinishInOrderWithSkipsAndRetries) {
    std::vector<std::string> events;
    RunOptions options;
    options.on_event = [&events](const char *event, const std::string &text) {
        Json data = parse_json(text, "event");
        std::string line = std::string(event) + " " + json_string_value(json_object_get(data.get(), "node_id"));
        if (const char *status = json_string_value(json_object_get(data.get(), "status")))
            line += std::string(":") + status;
        if (json_is_true(json_object_get(data.get(), "retrying"))) line += "+retrying";
        if (json_is_true(json_object_get(data.get(), "output_truncated"))) line += "+truncated";
        events.push_back(line);
    };
    NodeRunners runners = NodeRunners::builtin();
    runners.add("delay", run_flaky);
    flaky_calls = 1;  // fails once, then succeeds
    Outcome outcome = run(R"json({"nodes": [
        {"id": "s", "type": "start", "data": {"inputs": [{"name": "big"}]}},
        {"id": "c", "type": "condition", "config": {"left": 1, "operator": "eq", "right": 1}},
        {"id": "f", "type": "delay", "config": {"duration_ms": 1, "retryCount": 1}},
        {"id": "n", "type": "transform", "config": {"template": {"x": 1}}},
        {"id": "o", "type": "output", "config": {"value": "{{big}}"}}],
      "edges": [{"source": "s", "target": "c"}, {"source": "c", "sourceHandle": "true", "target": "f"},
                {"source": "c", "sourceHandle": "false", "target": "n"}, {"source": "f", "target": "o"}]})json",
                          R"({"big": ")" + std::string(kMaxEventOutputBytes, 'x') + R"("})", options, runners);
    EXPECT_EQ(outcome.result.status, "completed");
    std::vector<std::string> expected = {"node_started s",
                                         "node_finished s:completed+truncated",
                                         "node_started c",
                                         "node_finished c:completed",
                                         "node_started f",
                                         "node_finished f:failed+retrying",
                                         "node_finished n:skipped",
                                         "node_started f",
                                         "node_finished f:completed",
                                         "node_started o",
                                         "node_finished o:completed+truncated"};
    EXPECT_EQ(events, expected);
}

TEST(Executor, TellsNothingAfterCancel) {
    int after_cancel = 0;
    bool cancelled = false;
    RunOptions options;
    options.on_event = [&](const char *, const std::string &) { after_cancel += cancelled ? 1 : 0; };
    Outcome outcome = run(R"json({"nodes": [{"id": "s", "type": "start"},
        {"id": "d", "type": "delay", "config": {"duration_ms": 2000}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "d"}, {"source": "d", "target": "o"}]})json",
                          "{}", options, NodeRunners::builtin(), 20);
    cancelled = true;
    EXPECT_EQ(outcome.result.status, "cancelled");
    EXPECT_EQ(after_cancel, 0);
}
