// Custom domain names: one rule set for binding (the extension) and routing (the daemon).
#include "flowgres/domain_name.hpp"

#include <gtest/gtest.h>

using namespace flowgres;

namespace {
std::string ascii_of(std::string_view input) {
    DomainNameCheck check = check_domain_name(input);
    return check.name ? check.name->ascii : "refused: " + check.problem;
}
bool refused(std::string_view input) { return !check_domain_name(input).name; }
}  // namespace

TEST(DomainName, NormalizesToLowercaseALabels) {
    EXPECT_EQ(ascii_of("Shop.Example.COM"), "shop.example.com");
    EXPECT_EQ(ascii_of("shop.example.com."), "shop.example.com") << "the root's dot";
    EXPECT_EQ(ascii_of("Bücher.example"), "xn--bcher-kva.example");
    EXPECT_EQ(check_domain_name("xn--bcher-kva.example").name->unicode, "bücher.example");
    EXPECT_EQ(ascii_of("münchen.de"), "xn--mnchen-3ya.de");
    EXPECT_EQ(ascii_of("a-b.c-d.example"), "a-b.c-d.example");
    EXPECT_EQ(ascii_of(std::string(63, 'a') + ".com"), std::string(63, 'a') + ".com");
}

TEST(DomainName, RefusesWhatIsNotOneDomainName) {
    for (const char *input : {"", "localhost", "1.2.3.4", "10.0.0.1.", "[::1]", "::1", "*.example.com", "a.*.com",
                              "example.com:443", "https://example.com", "example.com/path", "user@example.com",
                              "exa mple.com", "exa\tmple.com", "a..b.com", ".example.com", "example..", "-a.example.com",
                              "a-.example.com", "ab--cd.example.com", "xn--zz.example.com", "ex_ample.com",
                              "example.com?x", "<script>.com", "x'; drop table t; --.com", "😀.example.com"})
        EXPECT_TRUE(refused(input)) << input;
    EXPECT_TRUE(refused(std::string(64, 'a') + ".com")) << "a label of 64";
    std::string long_name;
    while (long_name.size() <= 250) long_name += "abcdefghi.";
    EXPECT_TRUE(refused(long_name + "com")) << "over 253";
    EXPECT_TRUE(refused(std::string(1025, 'a'))) << "refused before any conversion";
    EXPECT_TRUE(refused(std::string("exa\0mple.com", 12))) << "NUL";
    EXPECT_TRUE(refused("\xff\xfe.example.com")) << "not UTF-8";
}

TEST(DomainName, WithinAHost) {
    EXPECT_TRUE(domain_within("apps.flowgres.test", "apps.flowgres.test"));
    EXPECT_TRUE(domain_within("a.b.apps.flowgres.test", "apps.flowgres.test"));
    EXPECT_FALSE(domain_within("notapps.flowgres.test", "apps.flowgres.test"));
    EXPECT_FALSE(domain_within("flowgres.test", "apps.flowgres.test"));
    EXPECT_FALSE(domain_within("anything.test", ""));
}

TEST(DomainName, RequestHost) {
    EXPECT_EQ(request_host("Shop.Example.com:8443"), "shop.example.com");
    EXPECT_EQ(request_host("shop.example.com."), "shop.example.com");
    EXPECT_EQ(request_host("127.0.0.1:8080"), "") << "an address is no domain";
    EXPECT_EQ(request_host("[::1]:80"), "");
    EXPECT_EQ(request_host("shop.example.com:"), "");
    EXPECT_EQ(request_host("shop.example.com:80x"), "");
    EXPECT_EQ(request_host("shop.example.com:123456"), "");
    EXPECT_EQ(request_host("evil.com/x"), "");
    EXPECT_EQ(request_host(std::string(400, 'a')), "");
}

TEST(DomainName, HostList) {
    EXPECT_EQ(host_list(" Apps.Example.com., flowgres.test ,,localhost"),
              (std::vector<std::string>{"apps.example.com", "flowgres.test", "localhost"}));
    EXPECT_TRUE(host_list("").empty());
    EXPECT_TRUE(host_list(" , ").empty());
}
