// ACME's cryptography (acme_crypto.hpp).
#include "acme/acme_crypto.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <stdexcept>

#include "flowgres/crypto.hpp"
#include "flowgres/json.hpp"

namespace flowgres::daemon::acme {
namespace {

template <typename T, void (*F)(T *)>
struct Deleter {
    void operator()(T *value) const { F(value); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using EcdsaSignature = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;
using DigestContext = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using Request = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using Certificate = std::unique_ptr<X509, Deleter<X509, X509_free>>;
void free_extensions(STACK_OF(X509_EXTENSION) * stack) { sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free); }
using Extensions = std::unique_ptr<STACK_OF(X509_EXTENSION), Deleter<STACK_OF(X509_EXTENSION), free_extensions>>;

[[noreturn]] void fail(const char *what) { throw std::runtime_error(std::string("ACME crypto: ") + what); }

std::string coordinate(EVP_PKEY *key, const char *name) {
    BIGNUM *raw = nullptr;
    if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) fail("no public key coordinate");
    Bignum number(raw);
    unsigned char bytes[32];
    if (BN_bn2binpad(number.get(), bytes, sizeof bytes) != 32) fail("a coordinate longer than 32 bytes");
    return base64url_encode(std::string_view(reinterpret_cast<const char *>(bytes), sizeof bytes));
}

bool is_p256(EVP_PKEY *key) {
    char group[64] = {};
    size_t length = 0;
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) == 1 &&
           std::string_view(group, length) == "prime256v1";
}

}  // namespace

EcKey EcKey::generate() {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (!key) fail("P-256 key generation failed");
    return EcKey(key);
}

std::optional<EcKey> EcKey::from_pem(std::string_view pem) {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (!key) return std::nullopt;
    if (!is_p256(key)) {
        EVP_PKEY_free(key);
        return std::nullopt;
    }
    return EcKey(key);
}

std::string EcKey::private_pem() const {
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        fail("the key could not be written");
    char *data = nullptr;
    long length = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(length));
}

std::string EcKey::jwk() const {
    return "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" + coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X) +
           "\",\"y\":\"" + coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y) + "\"}";
}

std::string EcKey::thumbprint() const {
    std::string text = jwk();
    unsigned char digest[32];
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) fail("SHA-256 failed");
    return base64url_encode(std::string_view(reinterpret_cast<const char *>(digest), length));
}

std::string EcKey::sign_es256(std::string_view data) const {
    DigestContext context(EVP_MD_CTX_new());
    size_t length = 0;
    if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(context.get(), nullptr, &length, reinterpret_cast<const unsigned char *>(data.data()), data.size()) != 1)
        fail("signing failed");
    std::string der(length, '\0');
    if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char *>(der.data()), &length,
                       reinterpret_cast<const unsigned char *>(data.data()), data.size()) != 1)
        fail("signing failed");
    const auto *cursor = reinterpret_cast<const unsigned char *>(der.data());
    EcdsaSignature signature(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(length)));
    if (!signature) fail("an unreadable signature");
    const BIGNUM *r = nullptr, *s = nullptr;
    ECDSA_SIG_get0(signature.get(), &r, &s);
    unsigned char raw[64];
    if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32) fail("a signature part over 32 bytes");
    return std::string(reinterpret_cast<const char *>(raw), sizeof raw);
}

std::string signed_request(const EcKey &key, const std::string &url, const std::string &nonce, const std::string &kid,
                           std::string_view payload) {
    std::string header = "{\"alg\":\"ES256\",\"nonce\":" + json_quote(nonce) + ",\"url\":" + json_quote(url) +
                         (kid.empty() ? ",\"jwk\":" + key.jwk() : ",\"kid\":" + json_quote(kid)) + "}";
    std::string protected_part = base64url_encode(header);
    std::string payload_part = payload.empty() ? "" : base64url_encode(payload);
    std::string signature = base64url_encode(key.sign_es256(protected_part + "." + payload_part));
    return "{\"protected\":\"" + protected_part + "\",\"payload\":\"" + payload_part + "\",\"signature\":\"" + signature +
           "\"}";
}

std::string csr_for(const EcKey &key, const std::string &domain) {
    Request request(X509_REQ_new());
    if (!request || X509_REQ_set_version(request.get(), 0) != 1) fail("no CSR");
    X509_NAME *subject = X509_REQ_get_subject_name(request.get());
    if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char *>(domain.c_str()), -1,
                                   -1, 0) != 1)
        fail("the CSR's subject");
    Extensions extensions(sk_X509_EXTENSION_new_null());
    std::string san = "DNS:" + domain;
    X509_EXTENSION *names = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    if (!extensions || !names) fail("the CSR's subjectAltName");
    sk_X509_EXTENSION_push(extensions.get(), names);
    if (X509_REQ_add_extensions(request.get(), extensions.get()) != 1 || X509_REQ_set_pubkey(request.get(), key.get()) != 1 ||
        X509_REQ_sign(request.get(), key.get(), EVP_sha256()) <= 0)
        fail("the CSR could not be signed");
    int length = i2d_X509_REQ(request.get(), nullptr);
    if (length <= 0) fail("the CSR could not be encoded");
    std::string der(static_cast<size_t>(length), '\0');
    auto *cursor = reinterpret_cast<unsigned char *>(der.data());
    i2d_X509_REQ(request.get(), &cursor);
    return base64url_encode(der);
}

std::optional<long long> certificate_not_after(std::string_view chain_pem) {
    Bio bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
    Certificate certificate(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!certificate) return std::nullopt;
    std::tm when{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate.get()), &when) != 1) return std::nullopt;
    return static_cast<long long>(timegm(&when));
}

}  // namespace flowgres::daemon::acme
