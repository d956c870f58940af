// Ownership and small conveniences over jansson, shared by the extension and the daemon.
// Not for: schema validation (each validator owns its rules) or streaming large documents.
#pragma once

#include <jansson.h>

#include <memory>
#include <string>
#include <string_view>

namespace flowgres {

struct JsonDeleter {
    void operator()(json_t *value) const { json_decref(value); }
};
using Json = std::unique_ptr<json_t, JsonDeleter>;

// Parses a JSON document; throws Error(BAD_REQUEST) naming `what` on malformed text.
Json parse_json(std::string_view text, std::string_view what);

// Compact, key order kept, non-ASCII kept as UTF-8.
std::string dump_json(const json_t *value);

// JSON text as PostgreSQL's jsonb takes it: every \u0000 (a NUL in a string, which jsonb
// refuses, making the whole row unstorable) becomes \ufffd, the replacement character.
std::string jsonb_safe(std::string text);

// A JSON string literal for `text` (quotes and escapes included).
std::string json_quote(std::string_view text);

// A new empty object. Code that runs inside PostgreSQL must call this, never jansson's
// json_object(): the postgres executable exports an SQL function of that very name, and the
// dynamic linker binds the extension's call to it (a crash). It is jansson's only clash.
json_t *new_json_object();

// Human name of a JSON type, for messages: "object", "string", …
const char *json_type_name(const json_t *value);

}  // namespace flowgres
