// The cryptography of ACME (RFC 8555) with OpenSSL: ECDSA P-256 keys (the account's and each
// certificate's), their JWK and thumbprint (RFC 7638), requests signed as flattened JWS with
// ES256 (RFC 7515, RFC 7518 §3.4: r and s, 32 bytes each), a certificate signing request for
// one name, and a certificate's expiry.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace flowgres::daemon::acme {

class EcKey {
public:
    static EcKey generate();
    // A PKCS#8 PEM private key of the P-256 curve; nullopt for anything else.
    static std::optional<EcKey> from_pem(std::string_view pem);

    std::string private_pem() const;
    // {"crv":"P-256","kty":"EC","x":…,"y":…}: the members in RFC 7638's order, no spaces.
    std::string jwk() const;
    // base64url(SHA-256(jwk())): what HTTP-01's key authorization appends to the token.
    std::string thumbprint() const;
    // ES256 over `data`: 64 bytes, r then s.
    std::string sign_es256(std::string_view data) const;
    EVP_PKEY *get() const { return key_.get(); }

private:
    struct Free {
        void operator()(EVP_PKEY *key) const { EVP_PKEY_free(key); }
    };
    explicit EcKey(EVP_PKEY *key) : key_(key, Free{}) {}
    std::shared_ptr<EVP_PKEY> key_;
};

// A request body as RFC 8555 §6.2 wants it: {"protected", "payload", "signature"}, the protected
// header {alg: ES256, nonce, url} with `kid` (the account's URL) or, before there is one, the
// key's jwk. An empty `payload` is POST-as-GET.
std::string signed_request(const EcKey &key, const std::string &url, const std::string &nonce, const std::string &kid,
                           std::string_view payload);

// The CSR for one name (subject CN and subjectAltName DNS), DER as base64url: the finalize body's
// "csr".
std::string csr_for(const EcKey &key, const std::string &domain);

// The first certificate of a PEM chain: its notAfter (seconds since the epoch); nullopt when
// the chain holds no readable certificate.
std::optional<long long> certificate_not_after(std::string_view chain_pem);

}  // namespace flowgres::daemon::acme
