// The runtime's pieces that need no server: client addresses behind proxies, and JWTs.
#include <gtest/gtest.h>

#include "forwarding.hpp"
#include "jwt.hpp"

using namespace flowgres;
using namespace flowgres::daemon;

TEST(ClientAddress, ThePeerUnlessItIsATrustedProxy) {
    CidrList proxies = CidrList::parse("10.0.0.0/8, ::1");
    EXPECT_EQ(client_address("203.0.113.5", {"", "1.2.3.4"}, proxies), "203.0.113.5") << "untrusted peers are believed";
    EXPECT_EQ(client_address("10.0.0.2", {"", "198.51.100.7"}, proxies), "198.51.100.7");
    EXPECT_EQ(client_address("10.0.0.2", {"", ""}, proxies), "10.0.0.2") << "a proxy that says nothing is the client";
}

TEST(ClientAddress, ReadsFromTheRightAndCannotBeSpoofedPastAProxy) {
    CidrList proxies = CidrList::parse("10.0.0.0/8");
    // The client wrote "6.6.6.6" itself; the proxy appended the real address.
    EXPECT_EQ(client_address("10.0.0.2", {"", "6.6.6.6, 198.51.100.7"}, proxies), "198.51.100.7");
    // Two proxies in a row are skipped.
    EXPECT_EQ(client_address("10.0.0.2", {"", "6.6.6.6, 198.51.100.7, 10.1.1.1"}, proxies), "198.51.100.7");
    // Garbage ends the walk at the last trusted hop.
    EXPECT_EQ(client_address("10.0.0.2", {"", "198.51.100.7, <script>"}, proxies), "10.0.0.2");
    EXPECT_EQ(client_address("10.0.0.2", {"", "1.2.3.4:5678"}, proxies), "1.2.3.4") << "ports are dropped";
}

TEST(ClientAddress, ForwardedHeader) {
    CidrList proxies = CidrList::parse("10.0.0.0/8");
    EXPECT_EQ(client_address("10.0.0.2", {R"(for=6.6.6.6, for="[2001:db8::7]:443";proto=https)", "9.9.9.9"}, proxies),
              "2001:db8::7")
        << "Forwarded wins over X-Forwarded-For";
    EXPECT_EQ(client_address("10.0.0.2", {"for=unknown", ""}, proxies), "10.0.0.2");
}

TEST(RequestedHost, TheHostHeaderUnlessATrustedProxySaysOtherwise) {
    CidrList proxies = CidrList::parse("10.0.0.0/8");
    EXPECT_EQ(requested_host("203.0.113.5", {"shop.example", "host=evil.test", "evil.test"}, proxies), "shop.example")
        << "an untrusted peer's forwarding headers are ignored";
    EXPECT_EQ(requested_host("10.0.0.2", {"10.0.0.1", "", "a.test, shop.example"}, proxies), "shop.example")
        << "the last X-Forwarded-Host: the nearest proxy's";
    EXPECT_EQ(requested_host("10.0.0.2", {"10.0.0.1", "for=1.2.3.4;host=a.test, for=5.6.7.8;Host=\"shop.example\"", "x.test"},
                             proxies),
              "shop.example")
        << "Forwarded's last element first, quotes taken off";
    EXPECT_EQ(requested_host("10.0.0.2", {"shop.example", "for=1.2.3.4", ""}, proxies), "shop.example")
        << "a Forwarded without host= leaves the Host header";
}

TEST(CidrList, MatchesRangesOfBothFamiliesAndMappedAddresses) {
    CidrList list = CidrList::of_entries({"198.51.100.0/24", "2001:db8:1::/48", "203.0.113.7", "not an address"});
    EXPECT_TRUE(list.contains("198.51.100.1"));
    EXPECT_TRUE(list.contains("198.51.100.255"));
    EXPECT_FALSE(list.contains("198.51.101.1"));
    EXPECT_TRUE(list.contains("::ffff:198.51.100.9")) << "an IPv4-mapped address is its IPv4 address";
    EXPECT_TRUE(list.contains("2001:db8:1:ffff::1"));
    EXPECT_FALSE(list.contains("2001:db8:2::1"));
    EXPECT_TRUE(list.contains("203.0.113.7"));
    EXPECT_FALSE(list.contains("203.0.113.8"));
    EXPECT_FALSE(list.contains("garbage"));
    EXPECT_TRUE(CidrList::parse("::ffff:10.0.0.0/104").contains("10.200.1.1")) << "a mapped range is an IPv4 range";
    EXPECT_TRUE(CidrList::parse("0.0.0.0/0").contains("8.8.8.8"));
    EXPECT_FALSE(CidrList::parse("0.0.0.0/0").contains("2001:db8::1"));
    EXPECT_THROW(CidrList::parse("10.0.0.0/-1"), std::invalid_argument);
    EXPECT_THROW(CidrList::parse("10.0.0.0/"), std::invalid_argument);
}

TEST(RateLimitSubject, IPv6CountsByItsSlash64) {
    EXPECT_EQ(rate_limit_subject("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    EXPECT_EQ(rate_limit_subject("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
    EXPECT_NE(rate_limit_subject("2001:db8:1:3::1"), rate_limit_subject("2001:db8:1:2::1"));
    EXPECT_EQ(rate_limit_subject("198.51.100.7"), "198.51.100.7");
    EXPECT_EQ(rate_limit_subject("::ffff:198.51.100.7"), "198.51.100.7");
    EXPECT_EQ(rate_limit_subject("unknown"), "unknown");
}

TEST(CidrList, ParsesAndMatches) {
    CidrList list = CidrList::parse("192.168.0.0/16,2001:db8::/32");
    EXPECT_TRUE(list.contains("192.168.4.4"));
    EXPECT_FALSE(list.contains("192.169.0.1"));
    EXPECT_TRUE(list.contains("2001:db8:1::1"));
    EXPECT_FALSE(list.contains("not an address"));
    EXPECT_THROW(CidrList::parse("10.0.0.0/33"), std::invalid_argument);
    EXPECT_THROW(CidrList::parse("example.com"), std::invalid_argument);
}

TEST(Jwt, AcceptsAValidHs256Token) {
    JwtSettings settings{"s3cret", "https://id.example", "flowgres", 30};
    std::string token =
        sign_jwt(R"({"sub":"user-42","iss":"https://id.example","aud":["other","flowgres"],"exp":2000,"workspace":"acme"})",
                 "s3cret");
    JwtCheck check = verify_jwt(token, settings, 1000);
    EXPECT_TRUE(check.ok) << check.error;
    EXPECT_EQ(check.subject, "user-42");
    EXPECT_EQ(check.workspace, "acme");
}

TEST(Jwt, RefusesForgedExpiredAndMisdirectedTokens) {
    JwtSettings settings{"s3cret", "iss", "aud", 30};
    auto claims = [](std::string extra) { return R"({"sub":"u","iss":"iss","aud":"aud","workspace":"w")" + extra + "}"; };
    EXPECT_EQ(verify_jwt(sign_jwt(claims(R"(,"exp":2000)"), "wrong"), settings, 1000).error,
              "the token's signature is invalid");
    EXPECT_EQ(verify_jwt(sign_jwt(claims(R"(,"exp":900)"), "s3cret"), settings, 1000).error, "the token has expired");
    EXPECT_TRUE(verify_jwt(sign_jwt(claims(R"(,"exp":990)"), "s3cret"), settings, 1000).ok) << "within the leeway";
    EXPECT_EQ(verify_jwt(sign_jwt(claims(""), "s3cret"), settings, 1000).error, "the token has no expiry");
    EXPECT_EQ(verify_jwt(sign_jwt(claims(R"(,"exp":2000,"nbf":1500)"), "s3cret"), settings, 1000).error,
              "the token is not valid yet");
    EXPECT_EQ(
        verify_jwt(sign_jwt(R"({"sub":"u","iss":"other","aud":"aud","exp":2000})", "s3cret"), settings, 1000).error,
        "the token's issuer is not accepted");
    EXPECT_EQ(
        verify_jwt(sign_jwt(R"({"sub":"u","iss":"iss","aud":"else","exp":2000})", "s3cret"), settings, 1000).error,
        "the token's audience is not accepted");
    EXPECT_EQ(verify_jwt(sign_jwt(R"({"sub":"u","iss":"iss","aud":"aud","exp":2000})", "s3cret"), settings, 1000).error,
              "the token names no workspace");
    EXPECT_EQ(verify_jwt("a.b", settings, 1000).error, "the token is not a JWT");
    EXPECT_EQ(verify_jwt("***.***.***", settings, 1000).error, "the token is not a JWT");
    // alg "none" with no signature: refused before anything is believed.
    EXPECT_FALSE(verify_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1IiwiZXhwIjo5OTk5OTk5OTk5fQ.", settings, 1000).ok);
    JwtSettings unconfigured;
    EXPECT_FALSE(verify_jwt(sign_jwt(claims(R"(,"exp":2000)"), ""), unconfigured, 1000).ok);
}
