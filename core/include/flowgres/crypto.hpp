// Hashing, random tokens and base64url (OpenSSL), shared by the extension and the daemon so both
// derive the same stored form of an API key. Not for: encryption of secrets (secret_box.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace flowgres {

// Bytes as lowercase hex, and back (nullopt for an odd length or a character not hex).
std::string hex_encode(std::string_view bytes);
std::optional<std::string> hex_decode(std::string_view text);

// Lowercase hex of SHA-256(data).
std::string sha256_hex(std::string_view data);

// HMAC-SHA-256 of `data` under `key`: the raw 32 bytes, and as lowercase hex.
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// `count` bytes from the operating system's CSPRNG, as unpadded base64url.
std::string random_token(size_t count);

// A version 4 UUID from the CSPRNG, in its canonical lowercase text form.
std::string random_uuid();
// A version 8 UUID from the first 16 bytes of HMAC-SHA-256(key, data): the same data gives the
// same id, and nobody without the key can compute or predict it.
std::string keyed_uuid(std::string_view key, std::string_view data);

// Unpadded base64url; decoding also takes the standard alphabet and padding. nullopt: not base64.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

// Constant-time equality, for comparing secrets.
bool secrets_equal(std::string_view left, std::string_view right);

// API keys: "fgk_" + 43 characters of base64url (32 random bytes).
inline constexpr std::string_view kApiKeyPrefix = "fgk_";
std::string new_api_key();
bool looks_like_api_key(std::string_view text);
// "fgk_AbCd…wXyZ": enough to recognise a key in a list, too little to use it.
std::string api_key_preview(std::string_view key);

}  // namespace flowgres
