// jansson glue: parse with a clear error, dump compactly, quote strings.
#include "flowgres/json.hpp"

#include "flowgres/errors.hpp"

#include <cstdlib>

namespace flowgres {

Json parse_json(std::string_view text, std::string_view what) {
    json_error_t error;
    // JSON_DECODE_ANY: callers decide which top-level types they accept, with a named message.
    Json value(json_loadb(text.data(), text.size(), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &error));
    if (!value) {
        throw Error(ErrorCode::BAD_REQUEST,
                    std::string(what) + " is not valid JSON: " + error.text,
                    "{\"field\":" + json_quote(what) + "}");
    }
    return value;
}

std::string dump_json(const json_t *value) {
    char *text = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (text == nullptr) return "null";
    std::string out(text);
    std::free(text);
    return out;
}

std::string jsonb_safe(std::string text) {
    for (size_t at = text.find("\\u0000"); at != std::string::npos; at = text.find("\\u0000", at + 1)) {
        // An escape only when the backslash is not itself escaped: an odd run of backslashes.
        size_t run = 0;
        while (at >= run + 1 && text[at - run - 1] == '\\') run++;
        if (run % 2 == 0) text.replace(at + 2, 4, "fffd");
    }
    return text;
}

std::string json_quote(std::string_view text) {
    // Most text needs no escape (ids, slugs, routes): quoted as it is, byte for byte what
    // jansson would write, without its allocations.
    bool plain = true;
    for (char c : text)
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
            plain = false;
            break;
        }
    if (plain) {
        std::string out;
        out.reserve(text.size() + 2);
        out += '"';
        out += text;
        out += '"';
        return out;
    }
    Json value(json_stringn(text.data(), text.size()));
    if (!value) {
        // jansson refuses invalid UTF-8; callers validate text first, so this is a last resort.
        return "\"\"";
    }
    return dump_json(value.get());
}

const char *json_type_name(const json_t *value) {
    switch (json_typeof(value)) {
        case JSON_OBJECT: return "object";
        case JSON_ARRAY: return "array";
        case JSON_STRING: return "string";
        case JSON_INTEGER: return "integer";
        case JSON_REAL: return "number";
        case JSON_TRUE:
        case JSON_FALSE: return "boolean";
        case JSON_NULL: return "null";
    }
    return "unknown";
}

json_t *new_json_object() {
    // json_pack's own call to json_object binds inside libjansson, so this is jansson's.
    return json_pack("{}");
}

}  // namespace flowgres
