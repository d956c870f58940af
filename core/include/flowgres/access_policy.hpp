// Who may run an app and how often (seed §31, §35.1): validation and merging of access-policy
// documents. Not for: enforcing them (runtime admission reads the stored, normalised document).
#pragma once

#include "flowgres/json.hpp"

#include <string_view>

namespace flowgres {

constexpr long long kDefaultPerIpRequests = 120;
constexpr long long kDefaultPerIpWindowSeconds = 60;
constexpr size_t kMaxAllowedOrigins = 100;
constexpr size_t kMaxListedAddresses = 10000;

// The policy a new app starts with: private, public data, default per-IP limit, no lists.
Json default_access_policy();

// Applies `patch` (an object of known top-level keys) to `current` and returns the result.
// Top-level keys replace; `rate_limit` replaces per window (per_ip / per_session / per_app,
// null removes one). Every problem is reported at once as VALIDATION_FAILED with field paths
// such as "rate_limit.per_ip.max_requests". Unknown keys are refused, not ignored.
Json merge_access_policy(const json_t *current, const json_t *patch);

}  // namespace flowgres
