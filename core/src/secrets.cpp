// Secret names, contexts, previews and masking (secrets.hpp).
#include "flowgres/secrets.hpp"

#include <cctype>

namespace flowgres::secrets {

bool is_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameLength) return false;
    if (!std::isalpha(static_cast<unsigned char>(name[0])) && name[0] != '_') return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
}

std::string sealing_context(std::string_view workspace_id, std::string_view name) {
    return "workspace_secret:" + std::string(workspace_id) + ":" + std::string(name);
}

std::string preview(std::string_view value) {
    if (value.size() < 16) return "…";
    // The last four bytes, moved back to a character boundary so the preview stays UTF-8.
    size_t from = value.size() - 4;
    while (from > 0 && (static_cast<unsigned char>(value[from]) & 0xC0) == 0x80) from--;
    return "…" + std::string(value.substr(from));
}

std::string mask_text(std::string text, const Values &values) {
    for (const auto &[name, value] : values) {
        if (value.size() < kMinMaskedLength) continue;
        std::string replacement = "[secret:" + name + "]";
        size_t at = text.find(value);
        if (at == std::string::npos) continue;
        std::string out;
        size_t from = 0;
        for (; at != std::string::npos; at = text.find(value, from)) {
            out.append(text, from, at - from);
            out += replacement;
            from = at + value.size();
        }
        out.append(text, from, std::string::npos);
        text = std::move(out);
    }
    return text;
}

void mask_json(json_t *document, const Values &values) {
    if (values.empty() || !document) return;
    if (json_is_string(document)) {
        std::string text(json_string_value(document), json_string_length(document));
        std::string masked = mask_text(text, values);
        if (masked != text) json_string_setn(document, masked.data(), masked.size());
    } else if (json_is_array(document)) {
        size_t index;
        json_t *item;
        json_array_foreach(document, index, item) mask_json(item, values);
    } else if (json_is_object(document)) {
        // Keys are masked too (a response may echo a header named after nothing secret, but a
        // body may use a value as a key): renamed members are collected first, then moved.
        std::vector<std::pair<std::string, std::string>> renamed;
        const char *key;
        json_t *item;
        json_object_foreach(document, key, item) {
            mask_json(item, values);
            std::string masked = mask_text(key, values);
            if (masked != key) renamed.emplace_back(key, std::move(masked));
        }
        for (const auto &[from, to] : renamed) {
            json_t *item_moved = json_incref(json_object_get(document, from.c_str()));
            json_object_del(document, from.c_str());
            json_object_set_new(document, to.c_str(), item_moved);
        }
    }
}

}  // namespace flowgres::secrets
