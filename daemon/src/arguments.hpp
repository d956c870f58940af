// From an HTTP request to the SQL arguments of its route: the body and query checked against
// the route table (types, required fields, unknown fields refused) with every problem reported
// at once as VALIDATION_FAILED. Pure: no sockets, no database.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "http/request.hpp"
#include "router.hpp"

namespace flowgres::daemon {

using SqlArguments = std::vector<std::optional<std::string>>;

// Throws flowgres::Error: BAD_REQUEST (malformed JSON or UTF-8), UNSUPPORTED_MEDIA_TYPE,
// VALIDATION_FAILED (with details.fields), or the route's *_NOT_FOUND for a malformed id in
// the path (an id that cannot exist is not found, whatever it tries to traverse to).
SqlArguments build_arguments(const Route &route, const RouteMatch &match, const http::Request &request);

}  // namespace flowgres::daemon
