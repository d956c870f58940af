// Signed-in visitors of public_auth apps (README "Public runtime"): a JWT (RFC 7519) signed
// with HS256 under a configured secret of at least 32 bytes, with the configured issuer and the
// required audience. Only HS256 is accepted ("none" and every other algorithm are refused,
// whatever the header says); exp is required, and so is a `workspace` claim (the slug or id of
// the workspace the token is for: admission refuses it anywhere else).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace flowgres::daemon {

struct JwtSettings {
    std::string secret;    // empty: no JWT is accepted
    std::string issuer;    // empty: any
    std::string audience;  // empty: any
    int64_t leeway_seconds = 30;
};

struct JwtCheck {
    bool ok = false;
    std::string subject;    // sub
    std::string workspace;  // the workspace claim
    std::string error;    // why not, for the 401's message
};

JwtCheck verify_jwt(std::string_view token, const JwtSettings &settings, int64_t now_seconds);

// For tests and tools: a token for the claims (a JSON object), signed with the secret.
std::string sign_jwt(std::string_view claims_json, std::string_view secret);

}  // namespace flowgres::daemon
