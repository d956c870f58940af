// Provider and model documents (core/llm_catalog): what is accepted, what each problem says.
#include "flowgres/llm_catalog.hpp"

#include <gtest/gtest.h>

#include "flowgres/json.hpp"

using namespace flowgres;

namespace {
// The VALIDATION_FAILED details of checking `text`, or "" when it passes.
std::string problems_of(std::string_view text, bool creating = true, bool workspace = true) {
    Json document = parse_json(text, "provider");
    try {
        llm::check_provider(document.get(), creating, workspace);
        return "";
    } catch (const Error &error) {
        EXPECT_EQ(error.code(), ErrorCode::VALIDATION_FAILED);
        return error.details_json();
    }
}
}  // namespace

TEST(LlmCatalog, NamesAndModelIds) {
    EXPECT_TRUE(llm::is_provider_name("openai"));
    EXPECT_TRUE(llm::is_provider_name("team_gw-2"));
    EXPECT_FALSE(llm::is_provider_name("OpenAI"));
    EXPECT_FALSE(llm::is_provider_name("-x"));
    EXPECT_FALSE(llm::is_provider_name(std::string(64, 'a')));
    EXPECT_TRUE(llm::is_model_id("meta-llama/Llama-3-8B"));
    EXPECT_TRUE(llm::is_model_id("local:echo"));
    EXPECT_FALSE(llm::is_model_id("a b"));
    EXPECT_FALSE(llm::is_model_id("tab\there"));
    EXPECT_FALSE(llm::is_model_id(std::string(201, 'm')));
    EXPECT_TRUE(llm::is_known_protocol("openai"));
    EXPECT_FALSE(llm::is_known_protocol("anthropic")) << "not spoken yet";
}

TEST(LlmCatalog, AGoodProviderPassesWithDefaults) {
    Json document = parse_json(R"({"name": "openai", "base_url": "https://api.openai.com/v1",
        "models": [{"model": "gpt-4o-mini", "input_micros_per_1m": 150000, "output_micros_per_1m": 600000}]})",
                               "p");
    llm::ProviderFields fields = llm::check_provider(document.get(), true, false);
    ASSERT_TRUE(fields.models);
    EXPECT_EQ(fields.models->at(0).context_tokens, 8192);
    EXPECT_EQ(fields.models->at(0).quality, 5);
    EXPECT_TRUE(fields.models->at(0).enabled);
    EXPECT_EQ(llm::models_json(*fields.models),
              R"([{"model":"gpt-4o-mini","input_micros_per_1m":150000,"output_micros_per_1m":600000,"context_tokens":8192,"quality":5,"enabled":true}])");
}

TEST(LlmCatalog, EveryProblemIsNamed) {
    std::string problems = problems_of(R"({"name": "x", "base_url": "https://u:p@x.example/v1?k=1", "surprise": 1,
        "models": [{"model": "m", "quality": 0, "colour": "red"}, {"model": "m"}]})");
    for (const char *field : {"\"base_url\"", "\"surprise\"", "\"models[0].quality\"", "\"models[0].colour\"", "\"models[1].model\""})
        EXPECT_NE(problems.find(field), std::string::npos) << field << " in " << problems;
    EXPECT_NE(problems_of(R"({"base_url": "https://x.example"})").find("\"name\""), std::string::npos);
    EXPECT_NE(problems_of(R"({"name": "x", "base_url": "https://x.example", "api_key_secret": "K"})", true, false)
                  .find("platform provider holds its key"),
              std::string::npos);
    EXPECT_NE(problems_of(R"({"name": "y"})", false).find("cannot change"), std::string::npos) << "no renames";
    EXPECT_EQ(problems_of(R"({"timeout_ms": 5000, "enabled": false})", false), "");
}
