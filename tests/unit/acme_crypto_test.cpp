// ACME's cryptography checked against OpenSSL's own verification: the ES256 signature of a
// signed request verifies under the JWK's key, the thumbprint is RFC 7638's, the CSR carries the
// name and verifies, and a certificate's expiry is read.
#include "acme/acme_crypto.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "flowgres/crypto.hpp"
#include "flowgres/json.hpp"

using namespace flowgres;
using namespace flowgres::daemon::acme;

namespace {

// Verifies a raw r||s ES256 signature of `data` with `key`'s public half.
bool verifies(const EcKey &key, std::string_view data, std::string_view raw) {
    ECDSA_SIG *signature = ECDSA_SIG_new();
    ECDSA_SIG_set0(signature, BN_bin2bn(reinterpret_cast<const unsigned char *>(raw.data()), 32, nullptr),
                   BN_bin2bn(reinterpret_cast<const unsigned char *>(raw.data()) + 32, 32, nullptr));
    unsigned char *der = nullptr;
    int length = i2d_ECDSA_SIG(signature, &der);
    ECDSA_SIG_free(signature);
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    bool ok = EVP_DigestVerifyInit(context, nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
              EVP_DigestVerify(context, der, static_cast<size_t>(length), reinterpret_cast<const unsigned char *>(data.data()),
                               data.size()) == 1;
    EVP_MD_CTX_free(context);
    OPENSSL_free(der);
    return ok;
}

}  // namespace

TEST(AcmeCrypto, KeysRoundTripThroughPem) {
    EcKey key = EcKey::generate();
    std::optional<EcKey> again = EcKey::from_pem(key.private_pem());
    ASSERT_TRUE(again);
    EXPECT_EQ(again->jwk(), key.jwk());
    EXPECT_FALSE(EcKey::from_pem("not a key"));
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, rsa, nullptr, nullptr, 0, nullptr, nullptr);
    char *data = nullptr;
    long length = BIO_get_mem_data(bio, &data);
    EXPECT_FALSE(EcKey::from_pem(std::string_view(data, static_cast<size_t>(length)))) << "only P-256 keys";
    BIO_free(bio);
    EVP_PKEY_free(rsa);
}

TEST(AcmeCrypto, JwkAndThumbprint) {
    EcKey key = EcKey::generate();
    Json jwk = parse_json(key.jwk(), "jwk");
    EXPECT_EQ(std::string(json_string_value(json_object_get(jwk.get(), "kty"))), "EC");
    EXPECT_EQ(base64url_decode(json_string_value(json_object_get(jwk.get(), "x")))->size(), 32u);
    EXPECT_EQ(key.jwk().rfind("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 0), 0u) << "RFC 7638's member order";
    EXPECT_EQ(base64url_decode(key.thumbprint())->size(), 32u);
    EXPECT_NE(key.thumbprint(), EcKey::generate().thumbprint());
}

TEST(AcmeCrypto, SignedRequestsVerify) {
    EcKey key = EcKey::generate();
    std::string body = signed_request(key, "https://ca.test/new-order", "nonce-1", "https://ca.test/acct/7",
                                      R"({"identifiers":[{"type":"dns","value":"shop.example"}]})");
    Json document = parse_json(body, "jws");
    std::string protected_part = json_string_value(json_object_get(document.get(), "protected"));
    std::string payload_part = json_string_value(json_object_get(document.get(), "payload"));
    Json header = parse_json(*base64url_decode(protected_part), "header");
    EXPECT_EQ(std::string(json_string_value(json_object_get(header.get(), "alg"))), "ES256");
    EXPECT_EQ(std::string(json_string_value(json_object_get(header.get(), "kid"))), "https://ca.test/acct/7");
    EXPECT_EQ(std::string(json_string_value(json_object_get(header.get(), "nonce"))), "nonce-1");
    EXPECT_EQ(json_object_get(header.get(), "jwk"), nullptr) << "kid or jwk, never both";
    std::string signature = *base64url_decode(json_string_value(json_object_get(document.get(), "signature")));
    ASSERT_EQ(signature.size(), 64u);
    EXPECT_TRUE(verifies(key, protected_part + "." + payload_part, signature));
    EXPECT_FALSE(verifies(key, protected_part + ".x" + payload_part, signature));

    std::string first = signed_request(key, "https://ca.test/new-acct", "n", "", "{}");
    Json first_header = parse_json(*base64url_decode(json_string_value(json_object_get(parse_json(first, "jws").get(), "protected"))), "h");
    EXPECT_NE(json_object_get(first_header.get(), "jwk"), nullptr) << "before the account exists, the key itself";
    std::string as_get = signed_request(key, "https://ca.test/order/1", "n", "k", "");
    EXPECT_EQ(std::string(json_string_value(json_object_get(parse_json(as_get, "jws").get(), "payload"))), "") << "POST-as-GET";
}

TEST(AcmeCrypto, CsrNamesTheDomainAndVerifies) {
    EcKey key = EcKey::generate();
    std::string der = *base64url_decode(csr_for(key, "shop.example.com"));
    const auto *cursor = reinterpret_cast<const unsigned char *>(der.data());
    X509_REQ *request = d2i_X509_REQ(nullptr, &cursor, static_cast<long>(der.size()));
    ASSERT_NE(request, nullptr);
    EXPECT_EQ(X509_REQ_verify(request, key.get()), 1);
    STACK_OF(X509_EXTENSION) *extensions = X509_REQ_get_extensions(request);
    ASSERT_NE(extensions, nullptr);
    auto *names = static_cast<GENERAL_NAMES *>(X509V3_get_d2i(extensions, NID_subject_alt_name, nullptr, nullptr));
    ASSERT_NE(names, nullptr);
    ASSERT_EQ(sk_GENERAL_NAME_num(names), 1);
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, 0);
    ASSERT_EQ(name->type, GEN_DNS);
    EXPECT_EQ(std::string(reinterpret_cast<const char *>(ASN1_STRING_get0_data(name->d.dNSName))), "shop.example.com");
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    X509_REQ_free(request);
}

TEST(AcmeCrypto, CertificateExpiry) {
    EcKey key = EcKey::generate();
    X509 *certificate = X509_new();
    X509_set_version(certificate, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate), 0);
    X509_gmtime_adj(X509_getm_notAfter(certificate), 90L * 86400);
    X509_set_pubkey(certificate, key.get());
    X509_sign(certificate, key.get(), EVP_sha256());
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, certificate);
    char *data = nullptr;
    long length = BIO_get_mem_data(bio, &data);
    std::optional<long long> not_after = certificate_not_after(std::string_view(data, static_cast<size_t>(length)));
    ASSERT_TRUE(not_after);
    EXPECT_NEAR(static_cast<double>(*not_after - std::time(nullptr)), 90.0 * 86400, 5);
    EXPECT_FALSE(certificate_not_after("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"));
    BIO_free(bio);
    X509_free(certificate);
}
