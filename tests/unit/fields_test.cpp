// Field rules of seed §66: slugs, display text, emails, UUIDs, semantic versions, origins, IPs.
#include <gtest/gtest.h>

#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"

#include <vector>

using namespace flowgres;

namespace {

// The field a VALIDATION_FAILED names, or "" when `check` passes.
template <typename Check>
std::string failing_field(Check check) {
    try {
        check();
    } catch (const Error &error) {
        EXPECT_EQ(error.code(), ErrorCode::VALIDATION_FAILED);
        return error.message().substr(0, error.message().find(':'));
    }
    return "";
}

}  // namespace

TEST(Slug, AcceptsLowercaseDigitsAndInnerHyphens) {
    EXPECT_EQ(failing_field([] { check_slug("slug", "acme"); }), "");
    EXPECT_EQ(failing_field([] { check_slug("slug", "acme-2-labs"); }), "");
    EXPECT_EQ(failing_field([] { check_slug("slug", std::string(63, 'a')); }), "");
}

TEST(Slug, SlugCharactersAreWhatAnAddressSegmentMayHaveToNameAnything) {
    // Looser than check_slug (hyphens anywhere, any length up to the maximum, reserved words),
    // so the runtime refuses only what no workspace or app could be called, without a look-up.
    for (std::string ok : std::vector<std::string>{"a", "acme", "-acme", "ac--me", "runtime", std::string(63, 'a')})
        EXPECT_TRUE(has_slug_characters(ok)) << ok;
    for (std::string bad : std::vector<std::string>{"", std::string(64, 'a'), "Acme", "acme_labs", "acme labs", "<script>",
                                                    "..", "caf\xc3\xa9", std::string("ac\0me", 5)})
        EXPECT_FALSE(has_slug_characters(bad)) << bad;
}

TEST(Slug, RefusesBadShapesNamingTheField) {
    for (std::string bad : std::vector<std::string>{"ab", std::string(64, 'a'), "Acme", "acme_labs", "-acme", "acme-", "ac--me", "acme labs",
                            "acme'; drop table apps;--", "<script>", "../etc", "caf\xc3\xa9"})
        EXPECT_EQ(failing_field([&] { check_slug("slug", bad); }), "slug") << bad;
}

TEST(Slug, RefusesReservedWords) {
    for (auto word : {"api", "runtime", "admin", "www", "static", "health"})
        EXPECT_EQ(failing_field([&] { check_slug("slug", word); }), "slug") << word;
}

TEST(Slug, SlugifyMakesUsableSlugs) {
    EXPECT_EQ(slugify("Ada Lovelace's Team!"), "ada-lovelace-s-team");
    EXPECT_EQ(slugify("  --Hello--  "), "hello");
    EXPECT_EQ(slugify("日本"), "");
    EXPECT_LE(slugify(std::string(200, 'x')).size(), kSlugMaxLength);
}

TEST(DisplayText, RefusesControlCharactersEmptyAndTooLong) {
    EXPECT_EQ(failing_field([] { check_display_text("name", "Acme Labs", 100); }), "");
    EXPECT_EQ(failing_field([] { check_display_text("name", "日本語のチーム", 7); }), "");
    EXPECT_EQ(failing_field([] { check_display_text("name", "", 100); }), "name");
    EXPECT_EQ(failing_field([] { check_display_text("name", "   ", 100); }), "name");
    EXPECT_EQ(failing_field([] { check_display_text("name", " padded", 100); }), "name");
    EXPECT_EQ(failing_field([] { check_display_text("name", "line\nbreak", 100); }), "name");
    EXPECT_EQ(failing_field([] { check_display_text("name", std::string(101, 'a'), 100); }), "name");
    EXPECT_EQ(failing_field([] { check_display_text("name", "\xff\xfe", 100); }), "name");
}

TEST(Utf8, RejectsOverlongSurrogatesAndTruncation) {
    EXPECT_TRUE(is_valid_utf8("h\xc3\xa9llo \xf0\x9f\x98\x80"));
    EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
    EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
    EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
    EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(Email, AcceptsAddressesAndRefusesOthers) {
    EXPECT_EQ(failing_field([] { check_email("email", "ada@example.com"); }), "");
    for (std::string bad : std::vector<std::string>{"", "ada", "@example.com", "ada@", "ada@example", "ada@@example.com", "a da@example.com",
                            "ada@example..com", "<script>@x.io", "x'--@example.com"})
        EXPECT_EQ(failing_field([&] { check_email("email", bad); }), "email") << bad;
}

TEST(Uuid, ChecksTheTextualForm) {
    EXPECT_TRUE(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
    EXPECT_FALSE(is_uuid("123e4567e89b12d3a456426614174000"));
    EXPECT_FALSE(is_uuid("123e4567-e89b-12d3-a456-42661417400g"));
    EXPECT_FALSE(is_uuid("../../etc/passwd"));
}

TEST(SemanticVersion, ParsesAndPrintsSemver) {
    auto version = SemanticVersion::parse("1.2.3-beta.1+build.5");
    ASSERT_TRUE(version);
    EXPECT_EQ(version->major, 1u);
    EXPECT_EQ(version->patch, 3u);
    EXPECT_EQ(version->to_string(), "1.2.3-beta.1+build.5");
    for (auto bad : {"1", "1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "v1.2.3", "1.2.x", "", "1.2.3-beta..1"})
        EXPECT_FALSE(SemanticVersion::parse(bad)) << bad;
}

TEST(SemanticVersion, OrdersAsSemverSection11) {
    const char *ordered[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"};
    for (size_t i = 0; i + 1 < std::size(ordered); i++)
        EXPECT_LT(*SemanticVersion::parse(ordered[i]), *SemanticVersion::parse(ordered[i + 1])) << ordered[i];
    EXPECT_EQ(*SemanticVersion::parse("1.0.0+a"), *SemanticVersion::parse("1.0.0+b"));
}

TEST(Origin, AcceptsSchemeHostPort) {
    EXPECT_TRUE(is_origin("https://example.com"));
    EXPECT_TRUE(is_origin("http://localhost:3000"));
    EXPECT_TRUE(is_origin("https://*.example.com"));
    EXPECT_TRUE(is_origin("*"));
    for (auto bad : {"example.com", "https://", "https://example.com/path", "ftp://example.com", "https://exa mple.com",
                     "https://example.com:99999", "javascript:alert(1)", "https://EXAMPLE.com"})
        EXPECT_FALSE(is_origin(bad)) << bad;
}

TEST(IpOrCidr, AcceptsAddressesAndBlocks) {
    EXPECT_TRUE(is_ip_or_cidr("203.0.113.7"));
    EXPECT_TRUE(is_ip_or_cidr("10.0.0.0/8"));
    EXPECT_TRUE(is_ip_or_cidr("2001:db8::/32"));
    for (auto bad : {"10.0.0.0/33", "2001:db8::/129", "300.1.1.1", "host.example", "10.0.0.1/", "1.2.3.4/x", ""})
        EXPECT_FALSE(is_ip_or_cidr(bad)) << bad;
}

TEST(Iso8601Timestamp, AcceptsWhatPostgresReadsAndNothingItRefuses) {
    for (const char *good : {"2026-11-23", "2026-11-23T10:00:00Z", "2026-11-23 10:00:00.5+01:00", "2024-02-29T00:00:00Z",
                             "2000-02-29", "2026-12-31T23:59:59.999999-15:59", "2026-04-30T10:00+05"})
        EXPECT_TRUE(is_iso8601_timestamp(good)) << good;
    // Each of these passes a shape check but PostgreSQL refuses it: a reader's cast would fail.
    for (const char *bad : {"2026-02-29", "1900-02-29", "2026-04-31", "2026-11-23T24:00:00Z", "2026-11-23T10:60:00Z",
                            "2026-11-23T10:00:61Z", "2026-11-23T10:00:00+16:00", "2026-11-23T10:00:00+01:60",
                            "2026-13-01", "2026-00-10", "2026-11-23T10:00:00.1234567Z", "now", "2026-11-23T10Z", ""})
        EXPECT_FALSE(is_iso8601_timestamp(bad)) << bad;
}

TEST(Utf8Prefix, CutsBetweenCharactersNeverInside) {
    EXPECT_EQ(utf8_prefix("héllo", 2), "hé");
    EXPECT_EQ(utf8_prefix("éééé", 3), "ééé");
    EXPECT_EQ(utf8_prefix("日本語", 1), "日");
    EXPECT_EQ(utf8_prefix("🙂x", 1), "🙂");
    EXPECT_EQ(utf8_prefix("short", 80), "short");
    EXPECT_EQ(utf8_prefix("", 3), "");
    EXPECT_TRUE(is_valid_utf8(utf8_prefix(std::string(2001, 'a') + "é", 2001)));
}
