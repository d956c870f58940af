// AES-256-GCM sealing of secrets under the configured master keys (secret_box.hpp).
#include "flowgres/secret_box.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "flowgres/crypto.hpp"
#include "flowgres/fields.hpp"

namespace flowgres {
namespace {

constexpr std::string_view kPrefix = "enc:v1:";
constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

CipherContext new_cipher_context() {
    CipherContext context(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
    if (!context) throw std::runtime_error("EVP_CIPHER_CTX_new failed");
    return context;
}

bool valid_key_id(std::string_view id) {
    if (id.empty() || id.size() > 32) return false;
    for (char c : id)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    return true;
}


std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
    return text;
}

// The four parts after the prefix: key id, nonce, ciphertext with the tag at its end.
struct SealedParts {
    std::string key_id;
    std::string nonce;
    std::string ciphertext_and_tag;
};

std::optional<SealedParts> split_sealed(std::string_view sealed) {
    if (sealed.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
    std::string_view rest = sealed.substr(kPrefix.size());
    size_t first = rest.find(':');
    if (first == std::string_view::npos) return std::nullopt;
    size_t second = rest.find(':', first + 1);
    if (second == std::string_view::npos || rest.find(':', second + 1) != std::string_view::npos) return std::nullopt;
    std::string_view key_id = rest.substr(0, first);
    if (!valid_key_id(key_id)) return std::nullopt;
    auto nonce = base64url_decode(rest.substr(first + 1, second - first - 1));
    auto body = base64url_decode(rest.substr(second + 1));
    if (!nonce || nonce->size() != kNonceBytes || !body || body->size() < kTagBytes) return std::nullopt;
    return SealedParts{std::string(key_id), std::move(*nonce), std::move(*body)};
}

}  // namespace

Keyring Keyring::parse(std::string_view text) {
    Keyring keyring;
    size_t position = 0;
    while (position <= text.size()) {
        size_t end = text.find_first_of(",\n", position);
        if (end == std::string_view::npos) end = text.size();
        std::string_view entry = trim(text.substr(position, end - position));
        position = end + 1;
        if (entry.empty() || entry.front() == '#') continue;
        size_t equals = entry.find('=');
        if (equals == std::string_view::npos)
            throw std::invalid_argument("a master key entry must read id=key (entry " +
                                        std::to_string(keyring.keys_.size() + 1) + ")");
        std::string id(trim(entry.substr(0, equals)));
        std::string_view encoded = trim(entry.substr(equals + 1));
        if (!valid_key_id(id))
            throw std::invalid_argument("master key id \"" + utf8_prefix(id, 40) +
                                        "\" must be 1 to 32 of a-z, 0-9, _ and -");
        if (keyring.has_key(id)) throw std::invalid_argument("master key id \"" + id + "\" is listed twice");
        auto bytes = encoded.size() == 2 * kKeyBytes ? hex_decode(encoded) : std::nullopt;
        if (!bytes) bytes = base64url_decode(encoded);
        if (!bytes || bytes->size() != kKeyBytes)
            throw std::invalid_argument("master key \"" + id + "\" must be 32 bytes as base64 or 64 hex digits");
        keyring.keys_.push_back({std::move(id), std::move(*bytes)});
    }
    return keyring;
}

Keyring Keyring::load(const std::string &path, const char *environment_value) {
    if (path.empty()) return environment_value ? parse(environment_value) : Keyring();
    struct stat status {};
    if (stat(path.c_str(), &status) != 0) throw std::invalid_argument("the master key file " + path + " cannot be read");
    // Like ssh with a private key: a key file others can read is refused, not used.
    if (status.st_mode & (S_IRWXG | S_IRWXO))
        throw std::invalid_argument("the master key file " + path + " may be readable by its owner only (chmod 600)");
    std::ifstream file(path);
    if (!file) throw std::invalid_argument("the master key file " + path + " cannot be read");
    std::stringstream contents;
    contents << file.rdbuf();
    return parse(contents.str());
}

const std::string &Keyring::sealing_key_id() const {
    if (keys_.empty()) throw Error(ErrorCode::SECRETS_NOT_CONFIGURED, "no master key is configured (master_key_file or FLOWGRES_MASTER_KEYS)");
    return keys_.front().id;
}

bool Keyring::has_key(std::string_view id) const {
    for (const auto &key : keys_)
        if (key.id == id) return true;
    return false;
}

std::string Keyring::seal(std::string_view plaintext, std::string_view context) const {
    sealing_key_id();  // throws when there is none
    const MasterKey &key = keys_.front();
    unsigned char nonce[kNonceBytes];
    if (RAND_bytes(nonce, sizeof nonce) != 1) throw std::runtime_error("the CSPRNG failed");
    auto context_handle = new_cipher_context();
    EVP_CIPHER_CTX *cipher = context_handle.get();
    std::string out(plaintext.size() + kTagBytes, '\0');
    int length = 0;
    auto *out_bytes = reinterpret_cast<unsigned char *>(out.data());
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
        EVP_EncryptInit_ex(cipher, nullptr, nullptr, reinterpret_cast<const unsigned char *>(key.bytes.data()), nonce) != 1 ||
        EVP_EncryptUpdate(cipher, nullptr, &length, reinterpret_cast<const unsigned char *>(context.data()),
                          static_cast<int>(context.size())) != 1 ||
        EVP_EncryptUpdate(cipher, out_bytes, &length, reinterpret_cast<const unsigned char *>(plaintext.data()),
                          static_cast<int>(plaintext.size())) != 1 ||
        EVP_EncryptFinal_ex(cipher, out_bytes + length, &length) != 1 ||
        EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_GET_TAG, kTagBytes, out_bytes + plaintext.size()) != 1)
        throw std::runtime_error("AES-256-GCM encryption failed");
    return std::string(kPrefix) + key.id + ":" +
           base64url_encode(std::string_view(reinterpret_cast<const char *>(nonce), sizeof nonce)) + ":" + base64url_encode(out);
}

std::string Keyring::open(std::string_view sealed, std::string_view context) const {
    auto parts = split_sealed(sealed);
    if (!parts) throw Error(ErrorCode::SECRET_INVALID, "the stored secret is not an enc:v1 secret");
    const MasterKey *key = nullptr;
    for (const auto &candidate : keys_)
        if (candidate.id == parts->key_id) key = &candidate;
    if (!key)
        throw Error(ErrorCode::SECRET_KEY_UNKNOWN, "the secret was sealed with master key \"" + parts->key_id + "\", which is not configured",
                    "{\"key_id\":\"" + parts->key_id + "\"}");
    size_t text_size = parts->ciphertext_and_tag.size() - kTagBytes;
    auto *body = reinterpret_cast<unsigned char *>(parts->ciphertext_and_tag.data());
    auto context_handle = new_cipher_context();
    EVP_CIPHER_CTX *cipher = context_handle.get();
    std::string plaintext(text_size, '\0');
    int length = 0;
    auto *out_bytes = reinterpret_cast<unsigned char *>(plaintext.data());
    bool opened =
        EVP_DecryptInit_ex(cipher, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
        EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
        EVP_DecryptInit_ex(cipher, nullptr, nullptr, reinterpret_cast<const unsigned char *>(key->bytes.data()),
                           reinterpret_cast<const unsigned char *>(parts->nonce.data())) == 1 &&
        EVP_DecryptUpdate(cipher, nullptr, &length, reinterpret_cast<const unsigned char *>(context.data()),
                          static_cast<int>(context.size())) == 1 &&
        EVP_DecryptUpdate(cipher, out_bytes, &length, body, static_cast<int>(text_size)) == 1 &&
        EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_SET_TAG, kTagBytes, body + text_size) == 1 &&
        EVP_DecryptFinal_ex(cipher, out_bytes + length, &length) == 1;
    if (!opened)
        throw Error(ErrorCode::SECRET_INVALID,
                    "the secret does not open with master key \"" + key->id + "\" (a different key under the same id, or the secret was altered)",
                    "{\"key_id\":\"" + key->id + "\"}");
    return plaintext;
}

std::string Keyring::key_id_of(std::string_view sealed) {
    auto parts = split_sealed(sealed);
    return parts ? parts->key_id : std::string();
}

std::string new_master_key_text() {
    return random_token(kKeyBytes);
}

}  // namespace flowgres
