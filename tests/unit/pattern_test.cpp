// flowgres::Pattern: RE2 semantics, limits, and linear time on patterns that make
// backtracking engines exponential (a million characters must not crash or stall).
#include "flowgres/pattern.hpp"

#include <gtest/gtest.h>

#include <chrono>

using namespace flowgres;

TEST(Pattern, SearchAndFullMatchMeanWhatStdRegexMeant) {
    auto digits = Pattern::compile("[0-9]+");
    ASSERT_TRUE(digits);
    EXPECT_TRUE(digits->search("abc 42 def"));
    EXPECT_FALSE(digits->full_match("abc 42 def"));
    EXPECT_TRUE(digits->full_match("42"));
    EXPECT_FALSE(digits->search("none"));
    std::vector<std::string> groups;
    auto name = Pattern::compile(R"(([0-9]{4})_([a-z]+)\.(up|down)\.sql)");
    ASSERT_TRUE(name->full_match("0002_schema.up.sql", groups));
    EXPECT_EQ(groups, (std::vector<std::string>{"0002", "schema", "up"}));
    EXPECT_FALSE(name->full_match("x0002_schema.up.sql", groups));
    EXPECT_TRUE(groups.empty());
    std::string text = "Bearer abc and bearer def";
    EXPECT_EQ(Pattern::compile(R"(([Bb]earer)\s+\w+)")->replace_all(text, "\\1 [REDACTED]"), 2);
    EXPECT_EQ(text, "Bearer [REDACTED] and bearer [REDACTED]");
}

TEST(Pattern, RefusesWhatRe2CannotRunAndOverlongPatterns) {
    std::string error;
    for (const char *refused : {"(a)\\1", "(?=a)b", "(?<!a)b", "[", "a{2,1}"}) {
        EXPECT_FALSE(Pattern::compile(refused, &error)) << refused;
        EXPECT_FALSE(error.empty());
        EXPECT_NE(pattern_problem(refused).find("RE2"), std::string::npos);
    }
    EXPECT_FALSE(Pattern::compile(std::string(kPatternMaxLength + 1, 'a')));
    EXPECT_NE(pattern_problem(std::string(kPatternMaxLength + 1, 'a')).find("at most 500"), std::string::npos);
    EXPECT_TRUE(Pattern::compile(std::string(kPatternMaxLength, 'a')));
    EXPECT_EQ(pattern_problem("^[a-z]+$"), "");
    // A pattern whose program outgrows the memory budget is refused, not built.
    EXPECT_FALSE(Pattern::compile("((((((a{100}){100}){100}){100}){100}){100})"));
}

TEST(Pattern, ExponentialPatternsOnAMillionCharactersStayLinear) {
    std::string subject(1'000'000, 'a');
    subject += '!';
    auto started = std::chrono::steady_clock::now();
    for (const char *hostile : {"^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "(x+x+)+y", "^([a-z]+)*[0-9]$", "^[a-z]+$"}) {
        auto pattern = Pattern::compile(hostile);
        ASSERT_TRUE(pattern) << hostile;
        EXPECT_FALSE(pattern->full_match(subject)) << hostile;
        EXPECT_FALSE(pattern->search(subject)) << hostile;
    }
    // Not a timing test: a backtracking engine would not finish this at all (or overflow its stack).
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60));
    EXPECT_TRUE(Pattern::compile("^[a-z]+$")->full_match(std::string(1'000'000, 'z')));
}
