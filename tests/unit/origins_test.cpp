// allowed_origins: one meaning for admission, CORS and the embed page's frame-ancestors.
#include "flowgres/origins.hpp"

#include <gtest/gtest.h>

using namespace flowgres;

TEST(Origins, ExactWildcardAndAny) {
    EXPECT_TRUE(origin_matches("https://shop.example", "https://shop.example"));
    EXPECT_TRUE(origin_matches("https://shop.example", "https://SHOP.example:443")) << "case and default port";
    EXPECT_FALSE(origin_matches("https://shop.example", "http://shop.example")) << "the scheme counts";
    EXPECT_FALSE(origin_matches("https://shop.example", "https://shop.example:8443")) << "so does the port";
    EXPECT_FALSE(origin_matches("https://shop.example", "https://evil-shop.example"));
    EXPECT_TRUE(origin_matches("https://*.example.com", "https://a.example.com"));
    EXPECT_TRUE(origin_matches("https://*.example.com", "https://a.b.example.com")) << "any depth, as CSP";
    EXPECT_FALSE(origin_matches("https://*.example.com", "https://example.com")) << "not the domain itself";
    EXPECT_FALSE(origin_matches("https://*.example.com", "https://evilexample.com"));
    EXPECT_FALSE(origin_matches("https://*.example.com", "https://example.com.evil.test"));
    EXPECT_FALSE(origin_matches("https://*.example.com", "http://a.example.com"));
    EXPECT_TRUE(origin_matches("*", "https://anything.test"));
    EXPECT_FALSE(origin_matches("https://shop.example", "null"));
}

TEST(Origins, ListsAndFrameAncestors) {
    Json empty = parse_json("[]", "list"), listed = parse_json(R"(["https://shop.example", "https://*.partner.test"])", "list");
    EXPECT_TRUE(origin_allowed(empty.get(), "https://anyone.test")) << "no list, no restriction on calls";
    EXPECT_TRUE(origin_allowed(listed.get(), "https://x.partner.test"));
    EXPECT_FALSE(origin_allowed(listed.get(), "https://partner.test"));
    EXPECT_EQ(frame_ancestors(empty.get()), "'self'") << "an empty list frames on this site only";
    EXPECT_EQ(frame_ancestors(listed.get()), "'self' https://shop.example https://*.partner.test");
    Json any = parse_json(R"json(["*", "javascript:alert(1)"])json", "list");
    EXPECT_EQ(frame_ancestors(any.get()), "'self' *") << "anything not an origin never reaches the header";
}
