// The chat-completions wire protocol: requests built, chunks and answers read.
#include "flowgres/llm_openai.hpp"

#include <gtest/gtest.h>

#include "flowgres/json.hpp"

using namespace flowgres;

TEST(LlmOpenAI, RequestBodyAsksForAStreamWithUsage) {
    llm::ChatRequest request;
    request.model = "gpt-4o-mini";
    request.messages = {{"system", "be brief"}, {"user", "hi \"there\"\n"}};
    request.temperature = 0.5;
    request.max_tokens = 64;
    request.output_schema = R"({"type":"object","properties":{"summary":{"type":"string"}}})";
    Json body = parse_json(llm::chat_request_body(request), "body");
    EXPECT_STREQ(json_string_value(json_object_get(body.get(), "model")), "gpt-4o-mini");
    EXPECT_STREQ(json_string_value(json_object_get(json_array_get(json_object_get(body.get(), "messages"), 1), "content")),
                 "hi \"there\"\n");
    EXPECT_DOUBLE_EQ(json_real_value(json_object_get(body.get(), "temperature")), 0.5);
    EXPECT_EQ(json_integer_value(json_object_get(body.get(), "max_tokens")), 64);
    EXPECT_TRUE(json_is_true(json_object_get(json_object_get(body.get(), "stream_options"), "include_usage")));
    const json_t *format = json_object_get(body.get(), "response_format");
    EXPECT_STREQ(json_string_value(json_object_get(format, "type")), "json_schema");
    EXPECT_TRUE(json_is_object(json_object_get(json_object_get(format, "json_schema"), "schema")));
}

TEST(LlmOpenAI, StreamChunks) {
    auto delta = llm::parse_stream_chunk(
        R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}]})");
    ASSERT_TRUE(delta);
    EXPECT_EQ(delta->delta, " world");
    EXPECT_FALSE(delta->usage);
    auto last = llm::parse_stream_chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})");
    EXPECT_EQ(last->finish_reason, "stop");
    auto usage = llm::parse_stream_chunk(R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}})");
    ASSERT_TRUE(usage && usage->usage);
    EXPECT_EQ(usage->usage->prompt_tokens, 12);
    EXPECT_EQ(usage->usage->completion_tokens, 3);
    EXPECT_FALSE(llm::parse_stream_chunk("not json"));
    EXPECT_FALSE(llm::parse_stream_chunk("[1,2]"));
}

TEST(LlmOpenAI, WholeAnswersErrorsAndEstimates) {
    auto answer = llm::parse_completion(
        R"({"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"total_tokens":9}})");
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->text, "hi");
    EXPECT_EQ(answer->usage->prompt_tokens, 9) << "a total alone counts as prompt tokens (seed §54.1)";
    EXPECT_FALSE(llm::parse_completion("{}"));
    EXPECT_EQ(llm::error_message(R"({"error":{"message":"Rate limit reached","type":"rate_limit_exceeded"}})"),
              "Rate limit reached");
    EXPECT_EQ(llm::error_message("<html>bad gateway</html>"), "<html>bad gateway</html>");
    EXPECT_EQ(llm::estimate_tokens(""), 0);
    EXPECT_EQ(llm::estimate_tokens("abcde"), 2);
}

TEST(LlmOpenAI, TheJsonInAnAnswer) {
    EXPECT_EQ(dump_json(llm::json_in_answer(R"({"a":1})").get()), R"({"a":1})");
    EXPECT_EQ(dump_json(llm::json_in_answer("Here:\n```json\n{\"a\":2}\n```\nDone.").get()), R"({"a":2})");
    EXPECT_EQ(dump_json(llm::json_in_answer(R"(Sure! {"a":{"b":3}} Enjoy.)").get()), R"({"a":{"b":3}})");
    EXPECT_EQ(dump_json(llm::json_in_answer("42").get()), "42");
    EXPECT_FALSE(llm::json_in_answer("no json here"));
    EXPECT_FALSE(llm::json_in_answer("} backwards {"));
}
