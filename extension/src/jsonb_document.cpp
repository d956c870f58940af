// JsonbDocument and JsonbRef (jsonb_document.hpp) over PostgreSQL's jsonb API.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include "flowgres/errors.hpp"
#include "guard.hpp"
#include "jsonb_document.hpp"

extern "C" {
#include "utils/json.h"
#include "utils/timestamp.h"
}

namespace flowgres {

// flowgres/json.hpp's: that header brings jansson, whose json_object clashes with the
// PostgreSQL function of that name that the headers this file needs declare.
std::string json_quote(std::string_view text);

struct JsonbRefAccess {
    static JsonbRef of(const JsonbValue &value) {
        JsonbRef ref;
        switch (value.type) {
            case jbvNull:
                ref.kind_ = JsonbRef::Kind::null;
                break;
            case jbvBool:
                ref.kind_ = JsonbRef::Kind::boolean;
                ref.flag_ = value.val.boolean;
                break;
            case jbvNumeric:
                ref.kind_ = JsonbRef::Kind::number;
                ref.pointer_ = value.val.numeric;
                break;
            case jbvString:
                ref.kind_ = JsonbRef::Kind::string;
                ref.pointer_ = value.val.string.val;
                ref.length_ = value.val.string.len;
                break;
            case jbvBinary:
                ref.kind_ = JsonContainerIsArray(value.val.binary.data) ? JsonbRef::Kind::array : JsonbRef::Kind::object;
                ref.pointer_ = value.val.binary.data;
                ref.length_ = value.val.binary.len;
                break;
            default:  // jbvArray, jbvObject, jbvDatetime: never read from a stored container
                break;
        }
        return ref;
    }

    static JsonbContainer *container(const JsonbRef &ref) {
        return static_cast<JsonbContainer *>(const_cast<void *>(ref.pointer_));
    }
    static Numeric numeric(const JsonbRef &ref) { return static_cast<Numeric>(const_cast<void *>(ref.pointer_)); }
    static int length(const JsonbRef &ref) { return ref.length_; }
};

namespace {

constexpr int kJanssonMaxDepth = 2048;  // jansson's JSON_PARSER_MAX_DEPTH

// What jansson refuses and jsonb_in accepts, found by one pass over the text before it is
// parsed (malformed text is left for jsonb_in to name): nesting past jansson's depth, integers
// outside 64 bits, numbers that overflow a double. "" when there is none.
std::string beyond_jansson(const std::string &text) {
    int depth = 0;
    size_t size = text.size();
    for (size_t i = 0; i < size; i++) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < size && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
        } else if (c == '[' || c == '{') {
            if (++depth > kJanssonMaxDepth) return "maximum parsing depth reached";
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i;
            bool integer = true;
            for (; i < size; i++) {
                char d = text[i];
                if (d == '.' || d == 'e' || d == 'E') integer = false;
                else if (!(d >= '0' && d <= '9') && d != '-' && d != '+') break;
            }
            std::string token = text.substr(start, i - start);
            i--;
            // Up to 18 digits always fit in 64 bits; strtod reads any number jsonb_in accepts.
            errno = 0;
            if (integer && token.size() > 18) {
                std::strtoll(token.c_str(), nullptr, 10);
                if (errno == ERANGE) return "too big integer";
            } else if (!integer) {
                double value = std::strtod(token.c_str(), nullptr);
                if (errno == ERANGE && std::isinf(value)) return "real number overflow";
            }
        }
    }
    return {};
}

// A number as PostgreSQL prints it (its scale kept: 1.0 stays 1.0).
std::string numeric_text(Numeric numeric) {
    char *printed = guard([&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(numeric))); });
    std::string out(printed);
    pfree(printed);
    return out;
}

}  // namespace

JsonbDocument JsonbDocument::parse(const std::string &text, std::string_view what) {
    auto refuse = [&](const std::string &reason) {
        return Error(ErrorCode::BAD_REQUEST, std::string(what) + " is not valid JSON: " + reason,
                     "{\"field\":" + json_quote(what) + "}");
    };
    if (std::string reason = beyond_jansson(text); !reason.empty()) throw refuse(reason);
    const char *cstring = text.c_str();
    JsonbDocument document;
    try {
        document.jsonb_ = guard([&] { return DatumGetPointer(DirectFunctionCall1(jsonb_in, CStringGetDatum(cstring))); });
    } catch (const PostgresError &error) {
        throw refuse(error.what());
    }
    JsonbContainer *root = &static_cast<Jsonb *>(const_cast<void *>(document.jsonb_))->root;
    document.root_ = guard([&] {
        JsonbValue scalar;
        if (JsonContainerIsScalar(root) && JsonbExtractScalar(root, &scalar)) return JsonbRefAccess::of(scalar);
        JsonbValue binary;
        binary.type = jbvBinary;
        binary.val.binary.data = root;
        binary.val.binary.len = static_cast<int>(VARSIZE(document.jsonb_) - VARHDRSZ);
        return JsonbRefAccess::of(binary);
    });
    return document;
}

std::string_view JsonbRef::string() const {
    return kind_ == Kind::string ? std::string_view(static_cast<const char *>(pointer_), length_) : std::string_view();
}

std::optional<long long> JsonbRef::integer() const {
    if (kind_ != Kind::number) return std::nullopt;
    std::string text = numeric_text(JsonbRefAccess::numeric(*this));
    size_t digits = text.size() - (text[0] == '-' ? 1 : 0);
    if (digits == 0 || digits > 19 || text.find_first_not_of("0123456789", text[0] == '-' ? 1 : 0) != std::string::npos)
        return std::nullopt;
    errno = 0;
    long long value = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) return std::nullopt;
    return value;
}

size_t JsonbRef::size() const {
    if (kind_ != Kind::array && kind_ != Kind::object) return 0;
    return JsonContainerSize(JsonbRefAccess::container(*this));
}

JsonbRef JsonbRef::operator[](size_t index) const {
    if (kind_ != Kind::array || index >= size()) return {};
    JsonbContainer *container = JsonbRefAccess::container(*this);
    return guard([&] {
        JsonbValue *element = getIthJsonbValueFromContainer(container, static_cast<uint32>(index));
        JsonbRef ref = element ? JsonbRefAccess::of(*element) : JsonbRef();
        if (element) pfree(element);
        return ref;
    });
}

JsonbRef JsonbRef::get(std::string_view key) const {
    if (kind_ != Kind::object) return {};
    JsonbContainer *container = JsonbRefAccess::container(*this);
    return guard([&] {
        JsonbValue member;
        return getKeyJsonValueFromContainer(container, key.data(), static_cast<int>(key.size()), &member)
                   ? JsonbRefAccess::of(member)
                   : JsonbRef();
    });
}

std::string JsonbRef::json() const {
    switch (kind_) {
        case Kind::absent:
        case Kind::null:
            return "null";
        case Kind::boolean:
            return flag_ ? "true" : "false";
        case Kind::string:
            return json_quote(string());
        case Kind::number:
            return numeric_text(JsonbRefAccess::numeric(*this));
        case Kind::array:
        case Kind::object: {
            JsonbContainer *container = JsonbRefAccess::container(*this);
            char *printed = guard([&] { return JsonbToCString(nullptr, container, 64); });
            std::string out(printed);
            pfree(printed);
            return out;
        }
    }
    return "null";
}

std::string JsonbRef::jsonb_text() const {
    if (kind_ != Kind::string) return json();
    std::string text(string());
    return guard([&] {
        StringInfoData quoted;
        initStringInfo(&quoted);
        escape_json(&quoted, text.c_str());
        std::string out(quoted.data, quoted.len);
        pfree(quoted.data);
        return out;
    });
}

namespace {
// A timestamptz as to_jsonb writes it: ISO 8601 in the session's time zone, quoted.
std::string timestamptz_json(TimestampTz value) {
    return guard([&] {
        char *encoded = JsonEncodeDateTime(nullptr, TimestampTzGetDatum(value), TIMESTAMPTZOID, nullptr);
        std::string out = "\"" + std::string(encoded) + "\"";
        pfree(encoded);
        return out;
    });
}
}  // namespace

std::string timestamptz_jsonb_text(const std::string &text) {
    TimestampTz value = guard([&] {
        return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()),
                                                       ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
    });
    return timestamptz_json(value);
}

void *jsonb_copy(const JsonbRef &value) {
    JsonbValue copied;
    switch (value.kind()) {
        case JsonbRef::Kind::null:
            copied.type = jbvNull;
            break;
        case JsonbRef::Kind::boolean:
            copied.type = jbvBool;
            copied.val.boolean = value.is_true();
            break;
        case JsonbRef::Kind::number:
            copied.type = jbvNumeric;
            copied.val.numeric = JsonbRefAccess::numeric(value);
            break;
        case JsonbRef::Kind::string:
            copied.type = jbvString;
            copied.val.string.val = const_cast<char *>(value.string().data());
            copied.val.string.len = static_cast<int>(value.string().size());
            break;
        case JsonbRef::Kind::array:
        case JsonbRef::Kind::object:
            copied.type = jbvBinary;
            copied.val.binary.data = JsonbRefAccess::container(value);
            copied.val.binary.len = JsonbRefAccess::length(value);
            break;
        case JsonbRef::Kind::absent:
            throw Error(ErrorCode::INTERNAL_ERROR, "an absent JSON value has no jsonb");
    }
    return guard([&] { return static_cast<void *>(JsonbValueToJsonb(&copied)); });
}

std::string transaction_start_jsonb_text() { return timestamptz_json(GetCurrentTransactionStartTimestamp()); }

}  // namespace flowgres
