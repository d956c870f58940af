// Templates: parsing, and rendering in each context.
#include "flowgres/template.hpp"

#include <gtest/gtest.h>

#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"

using namespace flowgres;

namespace {

struct Scope {
    Json values = parse_json(R"json({"name": "Ada Lovelace", "n": 42, "flag": true, "nothing": null,
        "http_1": {"body": {"items": [{"title": "first"}, {"title": "a&b=c/d"}]}, "status": 200},
        "evil": "x\r\nSet-Cookie: stolen"})json",
                             "scope");
    TemplateRoot roots() const {
        return
            [this](const std::string &root) -> const json_t * { return json_object_get(values.get(), root.c_str()); };
    }
};

std::string render(std::string_view text, TemplateContext context) {
    Scope scope;
    Json out(render_template(text, context, scope.roots()));
    return dump_json(out.get());
}

}  // namespace

TEST(Template, ParsesLiteralsAndPaths) {
    auto parts = parse_template("Hello {{ name }}, item {{http_1.body.items[1].title}}!");
    ASSERT_EQ(parts.size(), 5u);
    EXPECT_EQ(parts[0].literal, "Hello ");
    EXPECT_TRUE(parts[1].is_path);
    EXPECT_EQ(parts[1].path.text, "name");
    EXPECT_EQ(parts[3].path.steps.size(), 5u);
    EXPECT_EQ(std::get<size_t>(parts[3].path.steps[3]), 1u);
    EXPECT_TRUE(template_paths("no placeholders").empty());
}

TEST(Template, RefusesMalformedPlaceholders) {
    for (const char *bad : {"{{name", "{{}}", "{{ 1abc }}", "{{a..b}}", "{{a[]}}", "{{a[x]}}", "{{a + b}}", "{{a.b()}}",
                            "{{constructor.prototype}} {{", "{{a[99999999]}}"}) {
        try {
            parse_template(bad);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const Error &error) {
            EXPECT_EQ(error.code(), ErrorCode::VALIDATION_FAILED) << bad;
        }
    }
}

TEST(Template, JsonValueKeepsTypesWhenAlone) {
    EXPECT_EQ(render("{{n}}", TemplateContext::json_value), "42");
    EXPECT_EQ(render("{{flag}}", TemplateContext::json_value), "true");
    EXPECT_EQ(render("{{http_1.body.items[0]}}", TemplateContext::json_value), R"({"title":"first"})");
    EXPECT_EQ(render("n={{n}}", TemplateContext::json_value), R"("n=42")");
    EXPECT_EQ(render("plain", TemplateContext::json_value), R"("plain")");
}

TEST(Template, TextInterpolation) {
    EXPECT_EQ(render("Hi {{name}} ({{n}}, {{flag}}, [{{nothing}}])", TemplateContext::text),
              R"x("Hi Ada Lovelace (42, true, [])")x");
    EXPECT_EQ(render("{{http_1.body.items[0]}}", TemplateContext::text), R"("{\"title\":\"first\"}")");
}

TEST(Template, UrlComponentsArePercentEncoded) {
    EXPECT_EQ(
        render("https://api.test/search?q={{http_1.body.items[1].title}}&who={{name}}", TemplateContext::url_component),
        R"("https://api.test/search?q=a%26b%3Dc%2Fd&who=Ada%20Lovelace")");
}

TEST(Template, HeaderValuesLoseLineBreaks) {
    EXPECT_EQ(render("token {{evil}}", TemplateContext::header_value), R"("token xSet-Cookie: stolen")");
}

TEST(Template, MissingValuesAreErrorsNamingThePath) {
    for (const char *missing : {"{{unknown}}", "{{http_1.body.items[7].title}}", "{{n.deeper}}", "{{name[0]}}"}) {
        try {
            render(missing, TemplateContext::text);
            ADD_FAILURE() << missing;
        } catch (const Error &error) {
            EXPECT_NE(error.details_json().find("path"), std::string::npos);
        }
    }
}

TEST(Template, RendersWholeDocuments) {
    Scope scope;
    Json document = parse_json(
        R"json({"greeting": "hello {{name}}", "count": "{{n}}", "list": ["{{flag}}", 1], "{{name}}": "k"})json", "doc");
    Json out(render_json_templates(document.get(), scope.roots()));
    EXPECT_EQ(dump_json(out.get()), R"({"greeting":"hello Ada Lovelace","count":42,"list":[true,1],"{{name}}":"k"})");
}
