// /openapi.json: an OpenAPI 3.1 document generated from the route table, so the description
// cannot drift from what the router and the argument checks do.
#pragma once

#include <string>

namespace flowgres::daemon {

std::string openapi_document();

}  // namespace flowgres::daemon
