// What an app's allowed_origins mean, decided once for runtime admission (calls from a page on
// another site), CORS preflights and the embed page's frame-ancestors:
//   []                         no restriction on calls; the embed page frames only on this site
//   "*"                        any origin calls, any site frames the embed page
//   "https://shop.example"     that origin (scheme, host and port; default ports may be left out)
//   "https://*.example.com"    any subdomain of example.com, at any depth, not example.com itself
// The wildcard forms are CSP's own host-source syntax, so frame-ancestors means the same.
#pragma once

#include <string>
#include <string_view>

#include "flowgres/json.hpp"

namespace flowgres {

// Whether `origin` (an Origin header) is allowed by one entry of allowed_origins.
bool origin_matches(std::string_view allowed, std::string_view origin);

// Whether `origin` may call the app: an empty list allows any origin.
bool origin_allowed(const json_t *allowed_origins, std::string_view origin);

// The frame-ancestors sources of the embed page: 'self' and every valid entry.
std::string frame_ancestors(const json_t *allowed_origins);

}  // namespace flowgres
