// Template parsing and rendering.
#include "flowgres/template.hpp"

#include <cctype>

#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"

namespace flowgres {
namespace {

bool identifier_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool identifier_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

TemplatePath parse_path(std::string_view text) {
    size_t start = text.find_first_not_of(" \t");
    size_t end = text.find_last_not_of(" \t");
    if (start == std::string_view::npos)
        throw Error(ErrorCode::VALIDATION_FAILED, "empty template placeholder {{}}", "{\"path\":\"\"}");
    text = text.substr(start, end - start + 1);
    TemplatePath path;
    path.text = std::string(text);
    auto bad = [&](const std::string &why) {
        return Error(ErrorCode::VALIDATION_FAILED, "template path " + json_quote(text) + " " + why,
                     "{\"path\":" + json_quote(text) + "}");
    };
    size_t at = 0;
    auto read_name = [&]() {
        if (at >= text.size() || !identifier_start(text[at])) throw bad("must be names joined by '.' or [index]");
        size_t from = at;
        while (at < text.size() && identifier_char(text[at])) at++;
        return std::string(text.substr(from, at - from));
    };
    path.steps.emplace_back(read_name());
    while (at < text.size()) {
        if (text[at] == '.') {
            at++;
            path.steps.emplace_back(read_name());
        } else if (text[at] == '[') {
            size_t close = text.find(']', at);
            if (close == std::string_view::npos || close == at + 1 || close - at > 7) throw bad("has a bad [index]");
            size_t index = 0;
            for (size_t i = at + 1; i < close; i++) {
                if (!std::isdigit(static_cast<unsigned char>(text[i]))) throw bad("has a bad [index]");
                index = index * 10 + static_cast<size_t>(text[i] - '0');
            }
            path.steps.emplace_back(index);
            at = close + 1;
        } else {
            throw bad("must be names joined by '.' or [index]");
        }
    }
    if (path.steps.size() > 32) throw bad("is deeper than 32 steps");
    return path;
}


std::string header_safe(std::string text) {
    std::string out;
    for (char c : text)
        if (c != '\r' && c != '\n' && c != '\0') out += c;
    return out;
}

}  // namespace

std::string percent_encode(std::string_view text) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::vector<TemplatePart> parse_template(std::string_view text) {
    std::vector<TemplatePart> parts;
    size_t at = 0;
    while (at < text.size()) {
        size_t open = text.find("{{", at);
        if (open == std::string_view::npos) {
            parts.push_back(TemplatePart{false, std::string(text.substr(at)), {}});
            break;
        }
        if (open > at) parts.push_back(TemplatePart{false, std::string(text.substr(at, open - at)), {}});
        size_t close = text.find("}}", open + 2);
        if (close == std::string_view::npos)
            throw Error(ErrorCode::VALIDATION_FAILED, "a template placeholder {{ is never closed",
                        "{\"path\":" + json_quote(text.substr(open, 40)) + "}");
        parts.push_back(TemplatePart{true, {}, parse_path(text.substr(open + 2, close - open - 2))});
        at = close + 2;
    }
    return parts;
}

std::vector<TemplatePath> template_paths(std::string_view text) {
    std::vector<TemplatePath> paths;
    if (text.find("{{") == std::string_view::npos) return paths;
    for (auto &part : parse_template(text))
        if (part.is_path) paths.push_back(std::move(part.path));
    return paths;
}

const json_t *resolve_template_path(const TemplatePath &path, const TemplateRoot &roots) {
    const json_t *value = roots(path.root());
    for (size_t i = 1; value && i < path.steps.size(); i++) {
        if (const auto *name = std::get_if<std::string>(&path.steps[i]))
            value = json_is_object(value) ? json_object_get(value, name->c_str()) : nullptr;
        else
            value = json_is_array(value) ? json_array_get(value, std::get<size_t>(path.steps[i])) : nullptr;
    }
    return value;
}

std::string template_text(const json_t *value) {
    if (value == nullptr || json_is_null(value)) return "";
    if (json_is_string(value)) return std::string(json_string_value(value), json_string_length(value));
    return dump_json(value);
}

json_t *render_template(std::string_view text, TemplateContext context, const TemplateRoot &roots) {
    if (text.find("{{") == std::string_view::npos) return json_stringn(text.data(), text.size());
    auto parts = parse_template(text);
    auto lookup = [&](const TemplatePath &path) {
        const json_t *value = resolve_template_path(path, roots);
        if (!value)
            throw Error(ErrorCode::VALIDATION_FAILED, "template path " + json_quote(path.text) + " names no value",
                        "{\"path\":" + json_quote(path.text) + "}");
        return value;
    };
    if (context == TemplateContext::json_value && parts.size() == 1 && parts[0].is_path)
        return json_deep_copy(lookup(parts[0].path));
    std::string out;
    for (const auto &part : parts) {
        if (!part.is_path) {
            out += part.literal;
            continue;
        }
        std::string value = template_text(lookup(part.path));
        switch (context) {
            case TemplateContext::url_component:
                out += percent_encode(value);
                break;
            case TemplateContext::header_value:
                out += header_safe(std::move(value));
                break;
            default:
                out += value;
                break;
        }
    }
    if (context == TemplateContext::header_value) out = header_safe(std::move(out));
    return json_stringn(out.data(), out.size());
}

json_t *render_json_templates(const json_t *document, const TemplateRoot &roots) {
    if (json_is_string(document))
        return render_template(std::string_view(json_string_value(document), json_string_length(document)),
                               TemplateContext::json_value, roots);
    if (json_is_array(document)) {
        Json out(json_array());
        size_t index;
        json_t *value;
        json_array_foreach(const_cast<json_t *>(document), index, value)
            json_array_append_new(out.get(), render_json_templates(value, roots));
        return out.release();
    }
    if (json_is_object(document)) {
        Json out(new_json_object());
        const char *key;
        json_t *value;
        json_object_foreach(const_cast<json_t *>(document), key, value)
            json_object_set_new(out.get(), key, render_json_templates(value, roots));
        return out.release();
    }
    return json_deep_copy(document);
}

}  // namespace flowgres
