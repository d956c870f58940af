// RE2 behind flowgres::Pattern: options set once, errors as text, never logged to stderr.
#include "flowgres/pattern.hpp"

#include <re2/re2.h>

namespace flowgres {

Pattern::Pattern(std::unique_ptr<re2::RE2> compiled) : compiled_(std::move(compiled)) {}
Pattern::~Pattern() = default;

std::unique_ptr<Pattern> Pattern::compile(std::string_view text, std::string *error) {
    if (text.size() > kPatternMaxLength) {
        if (error) *error = "is longer than " + std::to_string(kPatternMaxLength) + " characters";
        return nullptr;
    }
    re2::RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(kPatternProgramMaxBytes);
    auto compiled = std::make_unique<re2::RE2>(re2::StringPiece(text.data(), text.size()), options);
    if (!compiled->ok()) {
        if (error) *error = compiled->error();
        return nullptr;
    }
    return std::unique_ptr<Pattern>(new Pattern(std::move(compiled)));
}

bool Pattern::search(std::string_view subject) const {
    return re2::RE2::PartialMatch(re2::StringPiece(subject.data(), subject.size()), *compiled_);
}

bool Pattern::full_match(std::string_view subject) const {
    return re2::RE2::FullMatch(re2::StringPiece(subject.data(), subject.size()), *compiled_);
}

bool Pattern::full_match(std::string_view subject, std::vector<std::string> &groups) const {
    // RE2's submatch 0 is the whole match; the groups follow it.
    int count = compiled_->NumberOfCapturingGroups() + 1;
    std::vector<re2::StringPiece> pieces(count);
    groups.clear();
    if (!compiled_->Match(re2::StringPiece(subject.data(), subject.size()), 0, subject.size(), re2::RE2::ANCHOR_BOTH,
                          pieces.data(), count))
        return false;
    for (int index = 1; index < count; index++)
        groups.emplace_back(pieces[index].data() ? std::string(pieces[index].data(), pieces[index].size()) : "");
    return true;
}

int Pattern::replace_all(std::string &text, std::string_view rewrite) const {
    return re2::RE2::GlobalReplace(&text, *compiled_, re2::StringPiece(rewrite.data(), rewrite.size()));
}

std::string pattern_problem(std::string_view text) {
    std::string error;
    if (Pattern::compile(text, &error)) return "";
    if (text.size() > kPatternMaxLength)
        return "must be a regular expression of at most " + std::to_string(kPatternMaxLength) + " characters";
    return "is not a regular expression RE2 accepts (no backreferences or lookaround): " + error;
}

}  // namespace flowgres
