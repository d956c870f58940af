// Regular expressions that users and visitors write (a UI field's validation.pattern, a
// condition step's `matches`) and the few fixed ones our own checks use. RE2 runs in time
// linear in its input with no recursion on it, so no pattern and no value can stall or crash
// the process that matches: a PostgreSQL backend included. std::regex must not be used.
// Syntax is RE2's (README "UI schema"): no backreferences and no lookaround.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace flowgres {

inline constexpr size_t kPatternMaxLength = 500;             // characters of a user's pattern
inline constexpr size_t kPatternSubjectMaxBytes = 1 << 20;   // bytes a user's pattern is matched against
inline constexpr int64_t kPatternProgramMaxBytes = 1 << 20;  // RE2's memory budget for one pattern

class Pattern {
public:
    // The compiled pattern, or nullptr with `error` saying why (too long, or not RE2 syntax).
    static std::unique_ptr<Pattern> compile(std::string_view text, std::string *error = nullptr);
    ~Pattern();
    Pattern(const Pattern &) = delete;
    Pattern &operator=(const Pattern &) = delete;

    // Anywhere in `subject` (std::regex_search's meaning), and the whole of it.
    bool search(std::string_view subject) const;
    bool full_match(std::string_view subject) const;
    // The whole of `subject`, with each capturing group's text in `groups` (empty on no match).
    bool full_match(std::string_view subject, std::vector<std::string> &groups) const;
    // Every match in `text` replaced by `rewrite` (\\1 names the first group); how many.
    int replace_all(std::string &text, std::string_view rewrite) const;

private:
    explicit Pattern(std::unique_ptr<re2::RE2> compiled);
    std::unique_ptr<re2::RE2> compiled_;
};

// The message for a field whose pattern does not compile, shared by every check.
std::string pattern_problem(std::string_view text);

}  // namespace flowgres
