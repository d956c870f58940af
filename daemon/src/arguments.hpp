// From an HTTP request to the SQL arguments of its route: the body and query checked against
// the route table (types, required fields, unknown fields refused) with every problem reported
// at once as VALIDATION_FAILED. Pure: no sockets, no database.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "http/request.hpp"
#include "flowgres/secret_box.hpp"
#include "router.hpp"

namespace flowgres::daemon {

using SqlArguments = std::vector<std::optional<std::string>>;

// Throws flowgres::Error: BAD_REQUEST (malformed JSON or UTF-8), UNSUPPORTED_MEDIA_TYPE,
// VALIDATION_FAILED (with details.fields), or the route's *_NOT_FOUND for a malformed id in
// the path (an id that cannot exist is not found, whatever it tries to traverse to).
SqlArguments build_arguments(const Route &route, const RouteMatch &match, const http::Request &request);

// Replaces each secret_value argument's plain text with {"sealed", "preview"}, sealed under
// the route's workspace_id and name. Throws Error(SECRETS_NOT_CONFIGURED) without master keys
// and VALIDATION_FAILED for a name that cannot be a secret's.
void seal_secret_values(const Route &route, SqlArguments &arguments, const Keyring &keyring);

}  // namespace flowgres::daemon
