// API keys as other concerns read them (api_key.cpp): the management API's authentication and
// the gateway's admission.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace flowgres {

// What authenticating a key reads, by its hash: every request of the management API asks,
// and keys, their users and their scopes rarely change, so each backend keeps what it read
// (catalog_cache.hpp: a new, revoked, rotated or re-scoped key and any change to users move
// the catalogue's generation; expiry is checked on every use).
struct KeyForAuthentication {
    std::string key_id;
    std::string user_id;
    bool user_active = false;
    bool revoked = false;
    std::optional<int64_t> expires_at_micros;  // since the Unix epoch
    std::string scopes;                        // comma-separated
    std::string workspace_id;                  // the workspace paying for its model calls ("" for none)
    // Its gateway limits (api_key_set_limits): JSON arrays as text ("" for none), and per minute
    // (0 for none).
    std::string allowed_models_json, ip_allow_json;
    int64_t requests_per_minute = 0, tokens_per_minute = 0;
};

std::optional<KeyForAuthentication> key_for_authentication(const std::string &key_hash);

// Why the key cannot be used now ("unknown_key", "user_disabled", "revoked", "expired"), or
// nullptr when it can.
const char *key_refusal(const std::optional<KeyForAuthentication> &key);

}  // namespace flowgres
