// Secrets at rest (database passwords, TLS keys): AES-256-GCM under a master key that lives in
// a file or an environment variable, never in the database. A stored secret reads
//     enc:v1:<key id>:<nonce>:<ciphertext and tag>
// (base64url, 12-byte nonce, 16-byte tag). The key id names the master key that sealed it, so
// several keys can be configured at once: the first seals, all of them open, and `rekey`
// re-seals what an old key sealed before that key is retired. Each secret is bound to what it
// is for (its context, e.g. "workspace_database:<id>") as associated data, so a ciphertext
// copied onto another row does not open there.
// Not for: hashing API keys (crypto.hpp), or the extension (it never sees a master key).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "flowgres/errors.hpp"

namespace flowgres {

struct MasterKey {
    std::string id;     // ^[a-z0-9_-]{1,32}$
    std::string bytes;  // 32 bytes
};

class Keyring {
public:
    Keyring() = default;
    // "id=<key>" entries separated by newlines or commas; a key is 32 bytes as base64
    // (standard or url alphabet) or 64 hex digits. The first entry seals. Blank lines and
    // lines starting with '#' are skipped. Throws std::invalid_argument naming the entry.
    static Keyring parse(std::string_view text);
    // The keyring of a file (mode checked: readable by its owner only) or, when `path` is
    // empty, of `environment_value` (FLOWGRES_MASTER_KEYS). Empty when neither is set.
    static Keyring load(const std::string &path, const char *environment_value);

    bool empty() const { return keys_.empty(); }
    const std::string &sealing_key_id() const;
    bool has_key(std::string_view id) const;

    // Throws Error(SECRETS_NOT_CONFIGURED) when the keyring is empty.
    std::string seal(std::string_view plaintext, std::string_view context) const;
    // Throws Error(SECRET_KEY_UNKNOWN) when the key id is not configured and
    // Error(SECRET_INVALID) when the text is not a sealed secret or does not open (wrong key,
    // wrong context, tampered).
    std::string open(std::string_view sealed, std::string_view context) const;
    // The key id of a sealed secret, or "" when the text is not one.
    static std::string key_id_of(std::string_view sealed);

private:
    std::vector<MasterKey> keys_;
};

// A fresh 32-byte key as base64url, for `flowgres-provision keygen`.
std::string new_master_key_text();

}  // namespace flowgres
