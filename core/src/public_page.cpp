// The public page's settings: merge and checks (see public_page.hpp for the fields).
#include "flowgres/public_page.hpp"

#include <array>
#include <string>

#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/pattern.hpp"

namespace flowgres {
namespace {

constexpr size_t kUrlMaxLength = 2048;
constexpr size_t kNoticeMaxLength = 10000;
constexpr size_t kMaxDefaults = 100;
constexpr size_t kMaxExamples = 12;
constexpr size_t kDefaultValueMaxLength = 10000;

using Check = void (*)(ValidationProblems &, const std::string &, const json_t *);

void display_text(ValidationProblems &problems, const std::string &field, const json_t *value, size_t max) {
    if (!json_is_string(value)) return problems.add(field, "must be a string");
    try {
        check_display_text(field, std::string_view(json_string_value(value), json_string_length(value)), max);
    } catch (const Error &error) {
        problems.add(field, error);
    }
}

// Notices are paragraphs: line breaks and tabs allowed, other control characters not.
void notice_text(ValidationProblems &problems, const std::string &field, const json_t *value) {
    if (!json_is_string(value)) return problems.add(field, "must be a string");
    std::string_view text(json_string_value(value), json_string_length(value));
    if (!is_valid_utf8(text)) return problems.add(field, "must be valid UTF-8");
    for (char c : text) {
        unsigned char u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\n' && c != '\t' && c != '\r') || u == 0x7F)
            return problems.add(field, "must not contain control characters other than line breaks");
    }
    if (text.find_first_not_of(" \n\t\r") == std::string_view::npos) return problems.add(field, "must not be empty");
    if (utf8_length(text) > kNoticeMaxLength)
        problems.add(field, "must be at most " + std::to_string(kNoticeMaxLength) + " characters");
}

// Absolute https URLs only: the page is served over https in production, and nothing else
// (javascript:, data:, relative paths that climb) can hide in one.
void https_url(ValidationProblems &problems, const std::string &field, const json_t *value) {
    const char *text = json_string_value(value);
    static const auto shape = Pattern::compile(R"(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!#-;=?-~]*)?)");
    if (!text || json_string_length(value) > kUrlMaxLength || !shape->full_match({text, json_string_length(value)}))
        problems.add(field, "must be an https:// URL of at most 2048 characters");
}

void color(ValidationProblems &problems, const std::string &field, const json_t *value) {
    const char *text = json_string_value(value);
    static const auto shape = Pattern::compile("#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})");
    if (!text || !shape->full_match({text, json_string_length(value)})) problems.add(field, "must be a colour such as #1f6feb or #18e");
}

void boolean(ValidationProblems &problems, const std::string &field, const json_t *value) {
    if (!json_is_boolean(value)) problems.add(field, "must be true or false");
}

// {text, url}: what a notice says and where the whole of it is.
void notice(ValidationProblems &problems, const std::string &field, const json_t *value) {
    if (!json_is_object(value)) return problems.add(field, "must be an object with text and/or url");
    const json_t *text = json_object_get(value, "text"), *url = json_object_get(value, "url");
    if (!text && !url) problems.add(field, "needs text, url or both");
    const char *key;
    json_t *member;
    json_object_foreach(const_cast<json_t *>(value), key, member) {
        std::string at = field + "." + key;
        if (std::string_view(key) == "text") notice_text(problems, at, member);
        else if (std::string_view(key) == "url") https_url(problems, at, member);
        else problems.add(at, "is not a field of a notice (text, url)");
    }
}

bool is_input_key(const char *key) {
    static const auto shape = Pattern::compile("[A-Za-z0-9_-]{1,64}");
    return shape->full_match(key);
}

// {input_key: value}: what a field starts with. Values are what a form field holds.
void input_values(ValidationProblems &problems, const std::string &field, const json_t *value) {
    if (!json_is_object(value)) return problems.add(field, "must be an object of input keys and values");
    if (json_object_size(value) > kMaxDefaults)
        return problems.add(field, "must have at most " + std::to_string(kMaxDefaults) + " inputs");
    const char *key;
    json_t *member;
    json_object_foreach(const_cast<json_t *>(value), key, member) {
        std::string at = field + "." + key;
        if (!is_input_key(key)) problems.add(field, "has a key that is no input key (1 to 64 letters, digits, _ or -)");
        else if (json_is_string(member) && utf8_length(json_string_value(member)) > kDefaultValueMaxLength)
            problems.add(at, "must be at most " + std::to_string(kDefaultValueMaxLength) + " characters");
        else if (json_is_string(member) && !is_valid_utf8(json_string_value(member)))
            problems.add(at, "must be valid UTF-8");
        else if (!json_is_string(member) && !json_is_number(member) && !json_is_boolean(member))
            problems.add(at, "must be a string, a number or true/false");
    }
}

void examples(ValidationProblems &problems, const std::string &field, const json_t *value) {
    if (!json_is_array(value)) return problems.add(field, "must be an array of {label, inputs}");
    if (json_array_size(value) > kMaxExamples)
        return problems.add(field, "must have at most " + std::to_string(kMaxExamples) + " examples");
    size_t index;
    json_t *example;
    json_array_foreach(const_cast<json_t *>(value), index, example) {
        std::string at = field + "[" + std::to_string(index) + "]";
        if (!json_is_object(example)) {
            problems.add(at, "must be an object with label and inputs");
            continue;
        }
        display_text(problems, at + ".label", json_object_get(example, "label"), 80);
        input_values(problems, at + ".inputs", json_object_get(example, "inputs"));
        if (json_object_size(example) > 2) problems.add(at, "has fields other than label and inputs");
    }
}

struct FieldRule {
    std::string_view name;
    Check check;
};

void title_text(ValidationProblems &p, const std::string &f, const json_t *v) { display_text(p, f, v, 120); }
void tagline_text(ValidationProblems &p, const std::string &f, const json_t *v) { display_text(p, f, v, 300); }
void label_text(ValidationProblems &p, const std::string &f, const json_t *v) { display_text(p, f, v, 40); }
void theme(ValidationProblems &p, const std::string &f, const json_t *v) {
    const char *text = json_string_value(v);
    if (!text || (std::string_view(text) != "light" && std::string_view(text) != "dark" && std::string_view(text) != "auto"))
        p.add(f, "must be light, dark or auto");
}
void language(ValidationProblems &p, const std::string &f, const json_t *v) {
    static const auto shape = Pattern::compile("[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}");
    const char *text = json_string_value(v);
    if (!text || !shape->full_match({text, json_string_length(v)})) p.add(f, "must be a language tag such as en or zh-CN");
}
void short_notice(ValidationProblems &p, const std::string &f, const json_t *v) {
    notice_text(p, f, v);
    if (json_is_string(v) && utf8_length(json_string_value(v)) > 1000) p.add(f, "must be at most 1000 characters");
}

constexpr std::array<FieldRule, 12> kBranding = {{{"title", title_text},
                                                   {"tagline", tagline_text},
                                                   {"logo_url", https_url},
                                                   {"accent_color", color},
                                                   {"background_color", color},
                                                   {"theme", theme},
                                                   {"submit_label", label_text},
                                                   {"anonymous_notice", short_notice},
                                                   {"terms", notice},
                                                   {"privacy", notice},
                                                   {"sign_in_url", https_url},
                                                   {"hide_powered_by", boolean}}};
constexpr std::array<FieldRule, 5> kSeo = {
    {{"title", title_text}, {"description", tagline_text}, {"image_url", https_url}, {"lang", language}, {"noindex", boolean}}};
constexpr std::array<FieldRule, 2> kInputs = {{{"defaults", input_values}, {"examples", examples}}};

template <size_t N>
void check_section(ValidationProblems &problems, const std::string &section, const json_t *document,
                   const std::array<FieldRule, N> &rules) {
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(document), key, value) {
        std::string at = section + "." + key;
        const FieldRule *rule = nullptr;
        for (const auto &candidate : rules)
            if (candidate.name == key) rule = &candidate;
        if (rule) {
            rule->check(problems, at, value);
        } else {
            std::string names;
            for (const auto &candidate : rules) names += (names.empty() ? "" : ", ") + std::string(candidate.name);
            problems.add(at, "is not a " + section + " field (" + names + ")");
        }
    }
}

}  // namespace

Json merge_public_page(const json_t *current, std::string_view section, const json_t *patch) {
    ValidationProblems problems;
    if (section != "branding" && section != "seo" && section != "inputs") {
        problems.add("section", "must be branding, seo or inputs");
        problems.throw_if_any();
    }
    if (!json_is_object(patch) || json_object_size(patch) == 0) {
        problems.add(section, "must be an object naming at least one field");
        problems.throw_if_any();
    }
    std::string name(section);
    Json document(json_is_object(current) ? json_deep_copy(current) : new_json_object());
    json_t *stored = json_object_get(document.get(), name.c_str());
    Json merged(json_is_object(stored) ? json_deep_copy(stored) : new_json_object());
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(patch), key, value) {
        if (json_is_null(value)) json_object_del(merged.get(), key);
        else json_object_set(merged.get(), key, value);
    }
    if (section == "branding") check_section(problems, name, merged.get(), kBranding);
    else if (section == "seo") check_section(problems, name, merged.get(), kSeo);
    else check_section(problems, name, merged.get(), kInputs);
    problems.throw_if_any();

    if (json_object_size(merged.get()) == 0) json_object_del(document.get(), name.c_str());
    else json_object_set(document.get(), name.c_str(), merged.get());
    if (dump_json(document.get()).size() > kPublicPageMaxBytes) {
        problems.add(section, "makes the page settings larger than 64 KiB");
        problems.throw_if_any();
    }
    return document;
}

}  // namespace flowgres
