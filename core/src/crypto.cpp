// SHA-256, CSPRNG tokens, base64url and API key shapes on OpenSSL's libcrypto.
#include "flowgres/crypto.hpp"

#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace flowgres {

std::string base64url_encode(std::string_view bytes) {
    auto data = reinterpret_cast<const unsigned char *>(bytes.data());
    size_t size = bytes.size();
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((size * 4 + 2) / 3);
    size_t i = 0;
    for (; i + 2 < size; i += 3) {
        unsigned value = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
        out += alphabet[(value >> 18) & 63];
        out += alphabet[(value >> 12) & 63];
        out += alphabet[(value >> 6) & 63];
        out += alphabet[value & 63];
    }
    if (size - i == 1) {
        unsigned value = data[i] << 16;
        out += alphabet[(value >> 18) & 63];
        out += alphabet[(value >> 12) & 63];
    } else if (size - i == 2) {
        unsigned value = (data[i] << 16) | (data[i + 1] << 8);
        out += alphabet[(value >> 18) & 63];
        out += alphabet[(value >> 12) & 63];
        out += alphabet[(value >> 6) & 63];
    }
    return out;
}

// Accepts both alphabets (url and standard) and optional '=' padding, so keys pasted from
// `openssl rand -base64 32` work as well as ours.
std::optional<std::string> base64url_decode(std::string_view text) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    unsigned value = 0;
    int bits = 0;
    for (char c : text) {
        int digit;
        if (c >= 'A' && c <= 'Z') digit = c - 'A';
        else if (c >= 'a' && c <= 'z') digit = c - 'a' + 26;
        else if (c >= '0' && c <= '9') digit = c - '0' + 52;
        else if (c == '-' || c == '+') digit = 62;
        else if (c == '_' || c == '/') digit = 63;
        else return std::nullopt;
        value = (value << 6) | static_cast<unsigned>(digit);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((value >> bits) & 0xff);
        }
    }
    return out;
}


std::string hex_encode(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
    if (text.size() % 2) return std::nullopt;
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (size_t i = 0; i < text.size(); i += 2) {
        int high = digit(text[i]), low = digit(text[i + 1]);
        if (high < 0 || low < 0) return std::nullopt;
        out += static_cast<char>(high * 16 + low);
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return hex_encode(std::string_view(reinterpret_cast<const char *>(digest), length));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char *>(data.data()),
         data.size(), digest, &length);
    return std::string(reinterpret_cast<char *>(digest), length);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) { return hex_encode(hmac_sha256(key, data)); }

std::string random_token(size_t count) {
    std::vector<unsigned char> bytes(count);
    if (RAND_bytes(bytes.data(), static_cast<int>(count)) != 1) throw std::runtime_error("the CSPRNG failed");
    return base64url_encode(std::string_view(reinterpret_cast<const char *>(bytes.data()), bytes.size()));
}

namespace {
// 16 bytes as a UUID of `version` (RFC 9562: 4 random, 8 custom), canonical lowercase text.
std::string uuid_text(unsigned char *bytes, int version) {
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | (version << 4));
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
    static const char digits[] = "0123456789abcdef";
    std::string text;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
        text += digits[bytes[i] >> 4];
        text += digits[bytes[i] & 0x0f];
    }
    return text;
}
}  // namespace

namespace {
// Bytes from the CSPRNG drawn a few hundred at a time: each RAND_bytes call has a fixed cost
// (finding the thread's generator, locking it) many times that of 16 bytes. Per thread, and
// dropped in a child process (a forked PostgreSQL backend must not hand out its parent's).
struct RandomBuffer {
    unsigned char bytes[512];
    size_t used = sizeof(bytes);
    pid_t owner = 0;
};

void random_from_buffer(unsigned char *out, size_t size) {
    thread_local RandomBuffer buffer;
    pid_t pid = getpid();
    if (buffer.owner != pid || sizeof(buffer.bytes) - buffer.used < size) {
        if (RAND_bytes(buffer.bytes, sizeof(buffer.bytes)) != 1) throw std::runtime_error("the CSPRNG failed");
        buffer.used = 0;
        buffer.owner = pid;
    }
    memcpy(out, buffer.bytes + buffer.used, size);
    OPENSSL_cleanse(buffer.bytes + buffer.used, size);  // handed out once
    buffer.used += size;
}
}  // namespace

std::string random_uuid() {
    unsigned char bytes[16];
    random_from_buffer(bytes, sizeof(bytes));
    return uuid_text(bytes, 4);
}

std::string keyed_uuid(std::string_view key, std::string_view data) {
    std::string digest = hmac_sha256(key, data);
    return uuid_text(reinterpret_cast<unsigned char *>(digest.data()), 8);
}

bool secrets_equal(std::string_view left, std::string_view right) {
    if (left.size() != right.size()) return false;
    return CRYPTO_memcmp(left.data(), right.data(), left.size()) == 0;
}

std::string new_api_key() {
    return std::string(kApiKeyPrefix) + random_token(32);
}

bool looks_like_api_key(std::string_view text) {
    if (text.size() != kApiKeyPrefix.size() + 43 || text.substr(0, kApiKeyPrefix.size()) != kApiKeyPrefix) return false;
    for (char c : text.substr(kApiKeyPrefix.size()))
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    return true;
}

std::string api_key_preview(std::string_view key) {
    if (key.size() < kApiKeyPrefix.size() + 8) return std::string(kApiKeyPrefix) + "…";
    return std::string(key.substr(0, kApiKeyPrefix.size() + 4)) + "…" + std::string(key.substr(key.size() - 4));
}

}  // namespace flowgres
