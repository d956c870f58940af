// Shared pieces of the SQL API's bodies: reading "changes" objects, picking free slugs, and the
// JSON documents functions return for each kind of row.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "flowgres/json.hpp"

namespace flowgres {

// The jsonb argument `field` as an object; VALIDATION_FAILED naming it otherwise.
Json parse_object_argument(const std::string &text, std::string_view field);

// A JSON array of the documents `document_sql` selects (one jsonb per row, aliased as none),
// narrowed by `where` (with $1 bound to `key` when given) and ordered by `order_by`, which
// speaks of the document as `doc`: "doc->>'created_at' desc". '[]' when there are none.
std::string document_list(const std::string &document_sql, const std::string &where, const char *order_by,
                          const std::optional<std::string> &key = std::nullopt);

// The documents returned by workspace_* functions: the row plus the actor's role.
std::string workspace_document(const std::string &workspace_id, const std::string &role);

// An app row with its access policy and current version summary.
std::string app_document(const std::string &app_id);

// A value flowgresd sealed before calling (a secret, a provider's key): {"sealed":
// "enc:v1:…", "preview": "…"}. VALIDATION_FAILED naming `field` for anything else, saying that
// such values are set through the HTTP API, which seals them.
struct SealedValue {
    std::string sealed;
    std::string preview;
};
SealedValue parse_sealed_value(const std::string &json, std::string_view field);

// `base` if free, else base-2, base-3 … (trimmed to 63 characters); `is_taken` asks the table.
std::string first_free_slug(std::string base, const std::function<bool(const std::string &)> &is_taken);

// A slug made from free text that passes check_slug (padded with `suffix` when too short or
// reserved).
std::string slug_from_text(std::string_view text, std::string_view suffix);

}  // namespace flowgres
