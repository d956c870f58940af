// Access-policy validation and merge (seed §31, §35.1).
#include <gtest/gtest.h>

#include "flowgres/access_policy.hpp"
#include "flowgres/errors.hpp"
#include "problem_fields.hpp"

using namespace flowgres;

namespace {

Json merge(const char *patch) {
    Json current = default_access_policy();
    Json changes = parse_json(patch, "patch");
    return merge_access_policy(current.get(), changes.get());
}

// The fields named by the VALIDATION_FAILED that `patch` raises.
std::vector<std::string> problems_of(const char *patch) {
    try {
        merge(patch);
    } catch (const Error &error) {
        return problem_fields(error);
    }
    return {};
}

}  // namespace

TEST(AccessPolicy, DefaultIsPrivateWithPerIpLimit) {
    Json policy = default_access_policy();
    EXPECT_STREQ(json_string_value(json_object_get(policy.get(), "access_mode")), "private");
    json_t *per_ip = json_object_get(json_object_get(policy.get(), "rate_limit"), "per_ip");
    EXPECT_EQ(json_integer_value(json_object_get(per_ip, "max_requests")), 120);
    EXPECT_EQ(json_integer_value(json_object_get(per_ip, "window_seconds")), 60);
}

TEST(AccessPolicy, MergesKnownFields) {
    Json policy = merge(R"json({"access_mode":"public_anonymous","allowed_origins":["https://a.example"],
                            "rate_limit":{"per_session":{"max_requests":10,"window_seconds":60}},
                            "blocked_ips":["203.0.113.0/24"],"require_captcha":true})json");
    EXPECT_STREQ(json_string_value(json_object_get(policy.get(), "access_mode")), "public_anonymous");
    json_t *rate_limit = json_object_get(policy.get(), "rate_limit");
    EXPECT_TRUE(json_object_get(rate_limit, "per_ip"));  // kept
    EXPECT_TRUE(json_object_get(rate_limit, "per_session"));
    EXPECT_TRUE(json_is_true(json_object_get(policy.get(), "require_captcha")));
}

TEST(AccessPolicy, NullRemovesAWindow) {
    Json policy = merge(R"json({"rate_limit":{"per_ip":null}})json");
    EXPECT_FALSE(json_object_get(json_object_get(policy.get(), "rate_limit"), "per_ip"));
}

TEST(AccessPolicy, ReportsEveryProblemWithItsPath) {
    auto fields = problems_of(R"json({"access_mode":"everyone","rate_limit":{"per_ip":{"max_requests":0,"window_seconds":"60"},
                                  "per_user":{}},"allowed_origins":["javascript:alert(1)"],"blocked_ips":["999.1.1.1"],
                                  "require_captcha":"yes","html":"<script>"})json");
    std::vector<std::string> expected = {"access_mode", "rate_limit.per_ip.max_requests", "rate_limit.per_ip.window_seconds",
                                         "rate_limit.per_user", "allowed_origins[0]", "blocked_ips[0]", "require_captcha", "html"};
    for (const auto &field : expected)
        EXPECT_NE(std::find(fields.begin(), fields.end(), field), fields.end()) << field;
}

TEST(AccessPolicy, AnonymousAccessNeedsPublicData) {
    auto fields = problems_of(R"json({"access_mode":"public_anonymous","data_classification":"confidential"})json");
    ASSERT_EQ(fields.size(), 1u);
    EXPECT_EQ(fields[0], "data_classification");
    EXPECT_NO_THROW(merge(R"json({"access_mode":"public_auth","data_classification":"restricted"})json"));
}

TEST(AccessPolicy, RefusesNonObjectsAndHugeLists) {
    EXPECT_EQ(problems_of("[]").at(0), "access_policy");
    std::string many = "{\"allowed_origins\":[";
    for (int i = 0; i < 101; i++) many += std::string(i ? "," : "") + "\"https://a.example\"";
    many += "]}";
    EXPECT_EQ(problems_of(many.c_str()).at(0), "allowed_origins");
}
