// Output safety (README "Output safety", seed §47): rule lists by category that every model
// answer is checked against, as it streams and as a whole. A rule is a phrase (matched
// anywhere, ignoring ASCII case) or an RE2 pattern. A hit names its category and nothing of
// the text. Streaming checks are linear: each piece is searched with only the tail of what came
// before that a phrase could straddle, and patterns see a sliding window of the last 4 KiB
// (the whole answer is checked again at its end).
// Not for: deciding what to do about a hit (the llm step fails with AI_OUTPUT_BLOCKED).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flowgres/pattern.hpp"

namespace flowgres::safety {

// self_harm, violence, illegal, hate, minors.
const std::vector<std::string> &categories();
bool is_category(std::string_view name);

inline constexpr size_t kMaxRuleLength = 200;
inline constexpr size_t kPatternWindowBytes = 4096;

struct Rule {
    std::string category;
    std::string kind;  // phrase, pattern
    std::string text;
};

// "" when the rule is fine, else what is wrong with it.
std::string rule_problem(const Rule &rule);

// The rules of a run, compiled once and shared by its streams.
class RuleSet {
public:
    explicit RuleSet(const std::vector<Rule> &rules);
    bool empty() const { return phrases_.empty() && patterns_.empty(); }
    // The category of the first rule `text` breaks, or "".
    std::string check(std::string_view text) const;

    struct Phrase {
        std::string category, lowered;  // lowered: ASCII letters in lower case
    };

private:
    friend class Stream;
    struct CompiledPattern {
        std::string category;
        std::shared_ptr<Pattern> pattern;
    };
    std::vector<Phrase> phrases_;
    std::vector<CompiledPattern> patterns_;
    size_t longest_phrase_ = 0;
};

// One answer being checked as it streams.
class Stream {
public:
    explicit Stream(std::shared_ptr<const RuleSet> rules) : rules_(std::move(rules)) {}
    // The category the answer breaks once `piece` is added to it, or "".
    std::string feed(std::string_view piece);

private:
    std::shared_ptr<const RuleSet> rules_;
    std::string tail_;    // lowered, the last (longest phrase - 1) bytes
    std::string window_;  // the last kPatternWindowBytes bytes, as written
};

}  // namespace flowgres::safety
