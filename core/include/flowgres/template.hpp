// Templates: "{{path.to.value}}" placeholders in strings, a variable-path language and nothing
// more (no expressions, no code). A path is an identifier followed by ".name" or "[index]"
// steps: `prompt`, `http_1.body.items[0].title`. Rendering depends on where the text goes
// (README "Workflows and executions"): a JSON value keeps the referenced value's type, a string gets its text, a URL
// component gets it percent-encoded, a header value gets it without CR, LF or NUL.
// Not for: resolving which paths exist in a workflow (workflow.hpp does that).
#pragma once

#include <jansson.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace flowgres {

struct TemplatePath {
    std::vector<std::variant<std::string, size_t>> steps;  // names and array indexes
    std::string text;                                      // as written, trimmed: "a.b[0]"
    const std::string &root() const { return std::get<std::string>(steps.front()); }
};

struct TemplatePart {
    bool is_path = false;
    std::string literal;
    TemplatePath path;
};

// The parts of `text`; throws Error(VALIDATION_FAILED) for an unclosed "{{" or a bad path.
std::vector<TemplatePart> parse_template(std::string_view text);

// Every path referenced by `text` (empty when it has none). Throws like parse_template.
std::vector<TemplatePath> template_paths(std::string_view text);

enum class TemplateContext { json_value, text, url_component, header_value };

// Looks a path's root up; nullptr when it names nothing. Values are borrowed.
using TemplateRoot = std::function<const json_t *(const std::string &root)>;

// Follows the rest of the path inside the root's value; nullptr when a step is missing.
const json_t *resolve_template_path(const TemplatePath &path, const TemplateRoot &roots);

// Renders one string. For json_value, a string that is exactly one placeholder becomes the
// referenced value itself (a number stays a number); every other case is a JSON string.
// Throws Error(VALIDATION_FAILED, details {"path"}) when a path resolves to nothing.
json_t *render_template(std::string_view text, TemplateContext context, const TemplateRoot &roots);

// Renders every string inside a JSON document (objects, arrays; keys are left alone) in the
// json_value context. Returns a new reference.
json_t *render_json_templates(const json_t *document, const TemplateRoot &roots);

// RFC 3986 unreserved characters kept, every other byte as %XX (a URL component's rendering).
std::string percent_encode(std::string_view text);

// The text a value contributes to a string: strings as they are, null as "", the rest as
// compact JSON.
std::string template_text(const json_t *value);

}  // namespace flowgres
