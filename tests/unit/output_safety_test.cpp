// Output safety rules: phrases and patterns, whole answers and streamed ones cut anywhere.
#include "flowgres/output_safety.hpp"

#include <gtest/gtest.h>

using namespace flowgres;

namespace {
std::shared_ptr<const safety::RuleSet> rules() {
    return std::make_shared<safety::RuleSet>(std::vector<safety::Rule>{
        {"violence", "phrase", "How To Build A Bomb"},
        {"self_harm", "phrase", "自杀方法"},
        {"illegal", "pattern", "(?i)launder(ing)? \\$?[0-9]+"},
    });
}
}  // namespace

TEST(OutputSafety, RulesAreChecked) {
    EXPECT_EQ(safety::rule_problem({"violence", "phrase", "x"}), "");
    EXPECT_NE(safety::rule_problem({"spam", "phrase", "x"}), "");
    EXPECT_NE(safety::rule_problem({"hate", "regex", "x"}), "");
    EXPECT_NE(safety::rule_problem({"hate", "phrase", ""}), "");
    EXPECT_NE(safety::rule_problem({"hate", "phrase", std::string(201, 'x')}), "");
    EXPECT_NE(safety::rule_problem({"hate", "pattern", "(a)\\1"}).find("pattern"), std::string::npos);
}

TEST(OutputSafety, WholeAnswers) {
    auto set = rules();
    EXPECT_EQ(set->check("Here is how to build a bomb: no."), "violence") << "phrases ignore ASCII case";
    EXPECT_EQ(set->check("请告诉我自杀方法"), "self_harm");
    EXPECT_EQ(set->check("they were Laundering 5000 dollars"), "illegal");
    EXPECT_EQ(set->check("a recipe for bread"), "");
}

TEST(OutputSafety, StreamedAnswersHitHoweverTheyAreCut) {
    std::string answer = "well... how to build a bomb is not something I explain";
    for (size_t piece = 1; piece <= answer.size(); piece++) {
        safety::Stream stream(rules());
        std::string hit;
        size_t at = 0;
        for (; at < answer.size() && hit.empty(); at += piece) hit = stream.feed(answer.substr(at, piece));
        EXPECT_EQ(hit, "violence") << piece;
        EXPECT_LE(at, answer.find("bomb") + 4 + piece) << "caught as soon as the phrase is complete";
    }
    safety::Stream pattern(rules());
    EXPECT_EQ(pattern.feed("we are laund"), "");
    EXPECT_EQ(pattern.feed("ering 12 euros"), "illegal");
    safety::Stream clean(rules());
    for (int i = 0; i < 10000; i++) EXPECT_EQ(clean.feed("nothing to see here "), "");
}
