// HS256 with OpenSSL's HMAC; base64url by hand (RFC 4648 §5, no padding), as it is the only
// encoding JWTs use and OpenSSL's decoder wants padding and the standard alphabet.
#include "jwt.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "flowgres/crypto.hpp"
#include "flowgres/json.hpp"

namespace flowgres::daemon {
namespace {

std::string base64url_encode(std::string_view data) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t buffer = 0;
    int bits = 0;
    for (unsigned char c : data) {
        buffer = (buffer << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += alphabet[(buffer >> bits) & 0x3F];
        }
    }
    if (bits > 0) out += alphabet[(buffer << (6 - bits)) & 0x3F];
    return out;
}

bool base64url_decode(std::string_view text, std::string &out) {
    uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        int value;
        if (c >= 'A' && c <= 'Z')
            value = c - 'A';
        else if (c >= 'a' && c <= 'z')
            value = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            value = c - '0' + 52;
        else if (c == '-')
            value = 62;
        else if (c == '_')
            value = 63;
        else
            return false;
        buffer = (buffer << 6) | static_cast<uint32_t>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    return bits < 6;  // a lone trailing character cannot be whole base64url
}

JwtCheck refuse(std::string why) {
    JwtCheck check;
    check.error = std::move(why);
    return check;
}

}  // namespace

JwtCheck verify_jwt(std::string_view token, const JwtSettings &settings, int64_t now_seconds) {
    if (settings.secret.empty()) return refuse("signed-in access is not configured");
    if (token.size() > 8192) return refuse("the token is too long");
    size_t first = token.find('.'), second = token.find('.', first == std::string_view::npos ? first : first + 1);
    if (first == std::string_view::npos || second == std::string_view::npos ||
        token.find('.', second + 1) != std::string_view::npos)
        return refuse("the token is not a JWT");
    std::string header_text, payload_text, signature;
    if (!base64url_decode(token.substr(0, first), header_text) ||
        !base64url_decode(token.substr(first + 1, second - first - 1), payload_text) ||
        !base64url_decode(token.substr(second + 1), signature))
        return refuse("the token is not a JWT");
    std::string expected = hmac_sha256(settings.secret, token.substr(0, second));
    if (signature.size() != expected.size() || CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0)
        return refuse("the token's signature is invalid");
    Json header, payload;
    try {
        header = parse_json(header_text, "header");
        payload = parse_json(payload_text, "payload");
    } catch (...) {
        return refuse("the token is not a JWT");
    }
    const char *algorithm = json_string_value(json_object_get(header.get(), "alg"));
    if (!algorithm || std::string_view(algorithm) != "HS256") return refuse("only HS256 tokens are accepted");
    const json_t *expires = json_object_get(payload.get(), "exp");
    if (!json_is_integer(expires)) return refuse("the token has no expiry");
    if (json_integer_value(expires) + settings.leeway_seconds <= now_seconds) return refuse("the token has expired");
    const json_t *not_before = json_object_get(payload.get(), "nbf");
    if (json_is_integer(not_before) && json_integer_value(not_before) - settings.leeway_seconds > now_seconds)
        return refuse("the token is not valid yet");
    if (!settings.issuer.empty()) {
        const char *issuer = json_string_value(json_object_get(payload.get(), "iss"));
        if (!issuer || settings.issuer != issuer) return refuse("the token's issuer is not accepted");
    }
    if (!settings.audience.empty()) {
        const json_t *audience = json_object_get(payload.get(), "aud");
        bool matched = json_is_string(audience) && settings.audience == json_string_value(audience);
        size_t index;
        json_t *item;
        if (json_is_array(audience))
            json_array_foreach(audience, index, item) if (json_is_string(item) &&
                                                          settings.audience == json_string_value(item)) matched = true;
        if (!matched) return refuse("the token's audience is not accepted");
    }
    const json_t *subject = json_object_get(payload.get(), "sub");
    if (!json_is_string(subject) || json_string_length(subject) == 0 || json_string_length(subject) > 256)
        return refuse("the token has no subject");
    const json_t *workspace = json_object_get(payload.get(), "workspace");
    if (!json_is_string(workspace) || json_string_length(workspace) == 0 || json_string_length(workspace) > 64)
        return refuse("the token names no workspace");
    JwtCheck check;
    check.ok = true;
    check.subject.assign(json_string_value(subject), json_string_length(subject));
    check.workspace.assign(json_string_value(workspace), json_string_length(workspace));
    return check;
}

std::string sign_jwt(std::string_view claims_json, std::string_view secret) {
    std::string signing_input =
        base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(claims_json);
    return signing_input + "." + base64url_encode(hmac_sha256(secret, signing_input));
}

}  // namespace flowgres::daemon
