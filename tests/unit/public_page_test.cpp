// The public page's settings: merge semantics and every field's check (seed §123).
#include <gtest/gtest.h>

#include "flowgres/errors.hpp"
#include "flowgres/public_page.hpp"
#include "problem_fields.hpp"

using namespace flowgres;

namespace {

Json merge(const char *current, const char *section, const char *patch) {
    Json stored = parse_json(current, "current");
    Json changes = parse_json(patch, "patch");
    return merge_public_page(stored.get(), section, changes.get());
}

std::vector<std::string> problems_of(const char *section, const char *patch, const char *current = "{}") {
    try {
        merge(current, section, patch);
    } catch (const Error &error) {
        return problem_fields(error);
    }
    return {};
}

using Fields = std::vector<std::string>;

}  // namespace

TEST(PublicPage, MembersReplaceAndNullRemoves) {
    Json page = merge(R"({"seo":{"title":"Old"},"branding":{"title":"Brand","theme":"dark"}})", "branding",
                      R"({"theme":null,"accent_color":"#1f6feb"})");
    EXPECT_EQ(dump_json(page.get()), R"({"seo":{"title":"Old"},"branding":{"title":"Brand","accent_color":"#1f6feb"}})");
    Json emptied = merge(R"({"seo":{"title":"Old"}})", "seo", R"({"title":null})");
    EXPECT_EQ(dump_json(emptied.get()), "{}");
}

TEST(PublicPage, MarkupInTextIsKeptForThePageToShowAsText) {
    Json page = merge("{}", "branding", R"j({"title":"<script>alert(1)</script>","anonymous_notice":"a\nb <b>"})j");
    EXPECT_STREQ(json_string_value(json_object_get(json_object_get(page.get(), "branding"), "title")),
                 "<script>alert(1)</script>");
}

TEST(PublicPage, BrandingFieldsAreChecked) {
    EXPECT_EQ(problems_of("branding", R"({"accent_color":"red"})"), Fields{"branding.accent_color"});
    EXPECT_EQ(problems_of("branding", R"({"accent_color":"#12345g"})"), Fields{"branding.accent_color"});
    EXPECT_EQ(problems_of("branding", R"j({"background_color":"#fff; background:url(x)"})j"), Fields{"branding.background_color"});
    EXPECT_EQ(problems_of("branding", R"({"theme":"neon"})"), Fields{"branding.theme"});
    EXPECT_EQ(problems_of("branding", R"j({"logo_url":"javascript:alert(1)"})j"), Fields{"branding.logo_url"});
    EXPECT_EQ(problems_of("branding", R"({"logo_url":"http://example.com/a.png"})"), Fields{"branding.logo_url"});
    EXPECT_EQ(problems_of("branding", R"({"logo_url":"https://example.com/a b.png"})"), Fields{"branding.logo_url"});
    EXPECT_EQ(problems_of("branding", R"({"logo_url":"https://example.com/a\".png"})"), Fields{"branding.logo_url"});
    EXPECT_TRUE(problems_of("branding", R"({"logo_url":"https://cdn.example.com:8443/logo.png?v=2#x"})").empty());
    EXPECT_EQ(problems_of("branding", R"({"title":"  "})"), Fields{"branding.title"});
    EXPECT_EQ(problems_of("branding", R"({"title":"a\u0007"})"), Fields{"branding.title"});
    EXPECT_EQ(problems_of("branding", R"({"title":5})"), Fields{"branding.title"});
    EXPECT_EQ(problems_of("branding", R"({"hide_powered_by":"yes"})"), Fields{"branding.hide_powered_by"});
    EXPECT_EQ(problems_of("branding", R"({"colour":"#fff"})"), Fields{"branding.colour"});
    EXPECT_EQ(problems_of("branding", R"({"terms":{}})"), Fields{"branding.terms"});
    EXPECT_EQ(problems_of("branding", R"({"terms":{"text":"ok","href":"x"}})"), Fields{"branding.terms.href"});
    EXPECT_EQ(problems_of("branding", R"({"privacy":{"url":"ftp://x"}})"), Fields{"branding.privacy.url"});
    EXPECT_TRUE(problems_of("branding", R"({"terms":{"text":"Line one\nLine two","url":"https://example.com/terms"}})").empty());
    // Every problem at once.
    EXPECT_EQ(problems_of("branding", R"({"theme":"x","accent_color":"y"})").size(), 2u);
}

TEST(PublicPage, SeoFieldsAreChecked) {
    EXPECT_TRUE(problems_of("seo", R"({"title":"Summaries","description":"Short","lang":"zh-CN","noindex":true})").empty());
    EXPECT_EQ(problems_of("seo", R"({"lang":"en\"><script>"})"), Fields{"seo.lang"});
    EXPECT_EQ(problems_of("seo", R"({"noindex":1})"), Fields{"seo.noindex"});
    EXPECT_EQ(problems_of("seo", (R"({"description":")" + std::string(301, 'x') + "\"}").c_str()).size(), 1u);
}

TEST(PublicPage, InputDefaultsAndExamplesAreChecked) {
    EXPECT_TRUE(problems_of("inputs", R"({"defaults":{"topic":"cats","count":3,"loud":true},
        "examples":[{"label":"Dogs","inputs":{"topic":"dogs"}}]})")
                    .empty());
    EXPECT_EQ(problems_of("inputs", R"({"defaults":{"topic":{"nested":1}}})"), Fields{"inputs.defaults.topic"});
    EXPECT_EQ(problems_of("inputs", R"({"defaults":{"../x":"a"}})"), Fields{"inputs.defaults"});
    EXPECT_EQ(problems_of("inputs", R"({"defaults":[]})"), Fields{"inputs.defaults"});
    EXPECT_EQ(problems_of("inputs", R"({"examples":[{"label":"","inputs":{}}]})"), Fields{"inputs.examples[0].label"});
    EXPECT_EQ(problems_of("inputs", R"({"examples":[{"label":"A","inputs":{},"html":"<b>"}]})"), Fields{"inputs.examples[0]"});
    std::string many = R"({"examples":[)";
    for (int i = 0; i < 13; i++) many += std::string(i ? "," : "") + R"({"label":"e","inputs":{}})";
    EXPECT_EQ(problems_of("inputs", (many + "]}").c_str()), Fields{"inputs.examples"});
}

TEST(PublicPage, SectionAndPatchShapeAreChecked) {
    EXPECT_EQ(problems_of("theme", R"({"title":"x"})"), Fields{"section"});
    EXPECT_EQ(problems_of("seo", "{}"), Fields{"seo"});
    EXPECT_EQ(problems_of("seo", "[]"), Fields{"seo"});
}

TEST(PublicPage, WholeDocumentIsBounded) {
    std::string big = R"({"defaults":{)";
    for (int i = 0; i < 10; i++) big += std::string(i ? "," : "") + "\"k" + std::to_string(i) + "\":\"" + std::string(9000, 'x') + "\"";
    EXPECT_EQ(problems_of("inputs", (big + "}}").c_str()), Fields{"inputs"});
}
