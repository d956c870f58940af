// JSON documents parsed by PostgreSQL's jsonb parser and read in place. For functions that check
// a large argument and then hand it to a statement: executions_record parses its batch once
// (it used to be parsed by jansson, freed node by node, and parsed again by its statement's
// ::jsonb), reads what it checks where it lies, and binds the parsed document to the statement
// (spi.hpp's query_over_document). Files with rules read documents through these classes and
// never include PostgreSQL's headers.
//
// A document refuses what flowgresd's reader (jansson) would refuse, so that whatever is stored
// from it can be read back: nesting deeper than 2048, integers outside 64 bits and numbers
// that overflow a double are BAD_REQUEST, as parse_json (flowgres/json.hpp) answers. Unlike
// parse_json, a key given twice keeps its last value (jsonb's rule) instead of being refused.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace flowgres {

// One value inside a JsonbDocument, or an absent one (a member that is not there). Valid while
// its document is (memory of the current SQL call).
class JsonbRef {
public:
    enum class Kind : unsigned char { absent, null, boolean, number, string, array, object };

    JsonbRef() = default;  // absent

    Kind kind() const { return kind_; }
    bool present() const { return kind_ != Kind::absent; }
    bool is_null() const { return kind_ == Kind::null; }
    bool is_boolean() const { return kind_ == Kind::boolean; }
    bool is_true() const { return kind_ == Kind::boolean && flag_; }
    bool is_string() const { return kind_ == Kind::string; }
    bool is_array() const { return kind_ == Kind::array; }
    bool is_object() const { return kind_ == Kind::object; }

    // A string's text (it holds no NUL: jsonb refuses \u0000); empty for any other kind.
    std::string_view string() const;
    // A number written without a fraction, within 64 bits (jsonb keeps a number's scale, not
    // its spelling: 1e3 is the integer 1000, 1.0 is no integer); nullopt for anything else.
    std::optional<long long> integer() const;

    // An array's elements or an object's members; 0 for any other kind.
    size_t size() const;
    // An array's element; absent past its end and for any other kind.
    JsonbRef operator[](size_t index) const;
    // An object's member; absent when it has none of that name and for any other kind.
    JsonbRef get(std::string_view key) const;

    // The value as JSON text ("null" when absent).
    std::string json() const;
    // The value as jsonb's text output writes it ("null" when absent): json()'s, but with
    // strings escaped as PostgreSQL escapes them, so that text built from it reads the same,
    // byte for byte, as a document PostgreSQL prints.
    std::string jsonb_text() const;

private:
    friend class JsonbDocument;
    friend struct JsonbRefAccess;

    Kind kind_ = Kind::absent;
    bool flag_ = false;
    int length_ = 0;                 // a string's bytes, a container's
    const void *pointer_ = nullptr;  // a string's bytes, a number's Numeric, a container's JsonbContainer
};

class JsonbDocument {
public:
    // `text` parsed as jsonb; BAD_REQUEST "<what> is not valid JSON: …" (naming `what` as the
    // detail's field) when it is not JSON or holds what jansson refuses (above).
    static JsonbDocument parse(const std::string &text, std::string_view what);

    JsonbRef root() const { return root_; }
    // The parsed Jsonb, palloc'd in the current SQL call's memory.
    const void *jsonb() const { return jsonb_; }

private:
    const void *jsonb_ = nullptr;
    JsonbRef root_;
};

// What to_jsonb(`text`::timestamptz)::text writes (in this session's time zone), failing as
// that cast fails when `text` is no timestamp.
std::string timestamptz_jsonb_text(const std::string &text);

// What to_jsonb(now())::text writes: the transaction's start.
std::string transaction_start_jsonb_text();

// `value` as a jsonb datum of its own (a palloc'd Jsonb, in the current memory context): a
// container's bytes copied as they lie, not printed and parsed again. Present values only.
void *jsonb_copy(const JsonbRef &value);

}  // namespace flowgres
