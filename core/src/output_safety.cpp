// Output safety rules (output_safety.hpp).
#include "flowgres/output_safety.hpp"

#include <algorithm>

#include "flowgres/fields.hpp"

namespace flowgres::safety {
namespace {

std::string lowered(std::string_view text) {
    std::string out(text);
    for (char &c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

}  // namespace

const std::vector<std::string> &categories() {
    static const std::vector<std::string> names = {"self_harm", "violence", "illegal", "hate", "minors"};
    return names;
}

bool is_category(std::string_view name) {
    const auto &names = categories();
    return std::find(names.begin(), names.end(), name) != names.end();
}

std::string rule_problem(const Rule &rule) {
    if (!is_category(rule.category)) return "category must be self_harm, violence, illegal, hate or minors";
    if (rule.kind != "phrase" && rule.kind != "pattern") return "kind must be phrase or pattern";
    if (rule.text.empty() || rule.text.size() > kMaxRuleLength || !is_valid_utf8(rule.text))
        return "text must be 1 to 200 bytes of UTF-8";
    for (char c : rule.text)
        if (static_cast<unsigned char>(c) < 0x20) return "text must not hold control characters";
    if (rule.kind == "pattern") {
        std::string error;
        if (!Pattern::compile(rule.text, &error)) return "pattern: " + error;
    }
    return "";
}

RuleSet::RuleSet(const std::vector<Rule> &rules) {
    for (const Rule &rule : rules) {
        if (!rule_problem(rule).empty()) continue;  // stored rules were checked; a bad one constrains nothing
        if (rule.kind == "phrase") {
            phrases_.push_back({rule.category, lowered(rule.text)});
            longest_phrase_ = std::max(longest_phrase_, rule.text.size());
        } else if (auto compiled = Pattern::compile(rule.text)) {
            patterns_.push_back({rule.category, std::shared_ptr<Pattern>(std::move(compiled))});
        }
    }
}

namespace {
std::string find_phrase(const std::vector<RuleSet::Phrase> &phrases, std::string_view lowered_text) {
    for (const auto &phrase : phrases)
        if (lowered_text.find(phrase.lowered) != std::string_view::npos) return phrase.category;
    return "";
}
}  // namespace

std::string RuleSet::check(std::string_view text) const {
    if (std::string hit = find_phrase(phrases_, lowered(text)); !hit.empty()) return hit;
    std::string_view subject = text.substr(0, kPatternSubjectMaxBytes);
    for (const auto &pattern : patterns_)
        if (pattern.pattern->search(subject)) return pattern.category;
    // Past the subject limit, patterns see the rest window by window.
    for (size_t at = kPatternSubjectMaxBytes; at < text.size(); at += kPatternSubjectMaxBytes - kPatternWindowBytes)
        for (const auto &pattern : patterns_)
            if (pattern.pattern->search(text.substr(at - kPatternWindowBytes, kPatternSubjectMaxBytes))) return pattern.category;
    return "";
}

std::string Stream::feed(std::string_view piece) {
    if (!rules_ || rules_->empty()) return "";
    std::string searched = tail_ + lowered(piece);
    if (std::string hit = find_phrase(rules_->phrases_, searched); !hit.empty()) return hit;
    size_t keep = rules_->longest_phrase_ > 0 ? rules_->longest_phrase_ - 1 : 0;
    tail_ = searched.size() > keep ? searched.substr(searched.size() - keep) : searched;
    if (!rules_->patterns_.empty()) {
        window_.append(piece);
        if (window_.size() > kPatternWindowBytes) window_.erase(0, window_.size() - kPatternWindowBytes);
        for (const auto &pattern : rules_->patterns_)
            if (pattern.pattern->search(window_)) return pattern.category;
    }
    return "";
}

}  // namespace flowgres::safety
