// Secrets sealed with AES-256-GCM under a keyring: round trips, rotation, and every way a
// stored secret can fail to open.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "flowgres/crypto.hpp"
#include "flowgres/secret_box.hpp"

namespace flowgres {
namespace {

const std::string kKeyA = "a=" + std::string(64, '1');
const std::string kKeyB = "b=" + new_master_key_text();

ErrorCode code_of(const std::function<void()> &action) {
    try {
        action();
    } catch (const Error &error) {
        return error.code();
    }
    ADD_FAILURE() << "no Error was thrown";
    return ErrorCode::INTERNAL_ERROR;
}

TEST(SecretBox, SealsAndOpensWithTheSameKeyAndContext) {
    Keyring keyring = Keyring::parse(kKeyA);
    std::string sealed = keyring.seal("p@ss'word;--", "workspace_database:1");
    EXPECT_EQ(sealed.rfind("enc:v1:a:", 0), 0u) << sealed;
    EXPECT_EQ(sealed.find("p@ss"), std::string::npos);
    EXPECT_EQ(keyring.open(sealed, "workspace_database:1"), "p@ss'word;--");
    EXPECT_EQ(Keyring::key_id_of(sealed), "a");
    // A fresh nonce each time: the same secret never seals to the same text.
    EXPECT_NE(keyring.seal("same", "c"), keyring.seal("same", "c"));
    EXPECT_EQ(keyring.open(keyring.seal("", "c"), "c"), "");
}

TEST(SecretBox, TheFirstKeySealsAndEveryKeyOpens) {
    Keyring old_ring = Keyring::parse(kKeyA);
    std::string sealed_by_a = old_ring.seal("secret", "ctx");
    Keyring rotated = Keyring::parse(kKeyB + "\n" + kKeyA);
    EXPECT_EQ(rotated.sealing_key_id(), "b");
    EXPECT_EQ(rotated.open(sealed_by_a, "ctx"), "secret");
    std::string resealed = rotated.seal(rotated.open(sealed_by_a, "ctx"), "ctx");
    EXPECT_EQ(Keyring::key_id_of(resealed), "b");
    // Once key a is retired, only what was re-sealed still opens.
    Keyring retired = Keyring::parse(kKeyB);
    EXPECT_EQ(retired.open(resealed, "ctx"), "secret");
    EXPECT_EQ(code_of([&] { retired.open(sealed_by_a, "ctx"); }), ErrorCode::SECRET_KEY_UNKNOWN);
}

TEST(SecretBox, AWrongKeyUnderTheSameIdDoesNotOpen) {
    std::string sealed = Keyring::parse(kKeyA).seal("secret", "ctx");
    Keyring impostor = Keyring::parse("a=" + std::string(64, '2'));
    EXPECT_EQ(code_of([&] { impostor.open(sealed, "ctx"); }), ErrorCode::SECRET_INVALID);
}

TEST(SecretBox, ASecretMovedToAnotherRowDoesNotOpen) {
    Keyring keyring = Keyring::parse(kKeyA);
    std::string sealed = keyring.seal("secret", "workspace_database:1");
    EXPECT_EQ(code_of([&] { keyring.open(sealed, "workspace_database:2"); }), ErrorCode::SECRET_INVALID);
}

TEST(SecretBox, TamperedOrMalformedTextDoesNotOpen) {
    Keyring keyring = Keyring::parse(kKeyA);
    std::string sealed = keyring.seal("secret", "ctx");
    std::string flipped = sealed;
    flipped[flipped.size() - 3] = flipped[flipped.size() - 3] == 'A' ? 'B' : 'A';
    EXPECT_EQ(code_of([&] { keyring.open(flipped, "ctx"); }), ErrorCode::SECRET_INVALID);
    for (std::string bad : {std::string(""), std::string("secret"), std::string("enc:v1:a"), std::string("enc:v1:a:AAAA:AAAA"),
                            std::string("enc:v2:") + sealed.substr(7), sealed + ":x", std::string("enc:v1:A B:") + sealed.substr(9)})
        EXPECT_EQ(code_of([&] { keyring.open(bad, "ctx"); }), ErrorCode::SECRET_INVALID) << bad;
}

TEST(SecretBox, AnEmptyKeyringRefusesToSeal) {
    Keyring keyring;
    EXPECT_TRUE(keyring.empty());
    EXPECT_EQ(code_of([&] { keyring.seal("x", "ctx"); }), ErrorCode::SECRETS_NOT_CONFIGURED);
}

TEST(SecretBox, ParsingNamesTheBadEntry) {
    EXPECT_THROW(Keyring::parse("a"), std::invalid_argument);
    EXPECT_THROW(Keyring::parse("a=short"), std::invalid_argument);
    EXPECT_THROW(Keyring::parse("A B=" + std::string(64, '1')), std::invalid_argument);
    EXPECT_THROW(Keyring::parse(kKeyA + "," + kKeyA), std::invalid_argument);
    try {
        Keyring::parse("k1=" + std::string(63, '1'));
        FAIL();
    } catch (const std::invalid_argument &error) {
        EXPECT_NE(std::string(error.what()).find("k1"), std::string::npos);
        EXPECT_EQ(std::string(error.what()).find(std::string(63, '1')), std::string::npos) << "the key itself is never echoed";
    }
    // Comments, blank lines, standard base64 with padding.
    Keyring keyring = Keyring::parse("# keys\n\n" + kKeyB + "\nc=" + std::string(43, 'A') + "=\n");
    EXPECT_TRUE(keyring.has_key("c"));
    EXPECT_EQ(keyring.sealing_key_id(), "b");
}

TEST(SecretBox, AKeyFileOthersCanReadIsRefused) {
    std::string path = testing::TempDir() + "/flowgres-master-keys";
    std::ofstream(path) << kKeyA << "\n";
    chmod(path.c_str(), 0644);
    EXPECT_THROW(Keyring::load(path, nullptr), std::invalid_argument);
    chmod(path.c_str(), 0600);
    EXPECT_EQ(Keyring::load(path, nullptr).sealing_key_id(), "a");
    std::remove(path.c_str());
    EXPECT_EQ(Keyring::load("", kKeyB.c_str()).sealing_key_id(), "b");
    EXPECT_TRUE(Keyring::load("", nullptr).empty());
}

TEST(Base64Url, RoundTripsAndRejectsNonBase64) {
    for (std::string bytes : {std::string(""), std::string("f"), std::string("fo"), std::string("foo"), std::string("\xff\x00\x7f", 3)})
        EXPECT_EQ(base64url_decode(base64url_encode(bytes)).value(), bytes);
    EXPECT_EQ(base64url_decode("Zm9vYg==").value(), "foob");
    EXPECT_FALSE(base64url_decode("Zm9v!").has_value());
    EXPECT_FALSE(base64url_decode("Z").has_value());
}

}  // namespace
}  // namespace flowgres
