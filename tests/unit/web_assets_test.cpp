// The public page's shell: escaping of every value, one-pass placeholders, served files only.
#include <gtest/gtest.h>

#include "web_assets.hpp"

using namespace flowgres::daemon;

TEST(WebAssets, EscapesHtmlAndScriptData) {
    EXPECT_EQ(html_escape(R"(<a href="x" title='y'>&</a>)"), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
    EXPECT_EQ(script_data_escape(R"({"t":"</script><!--&"})"), R"({"t":"\u003c/script\u003e\u003c!--\u0026"})");
    EXPECT_EQ(script_data_escape("\"a\xE2\x80\xA8" "b\xE2\x80\xA9\""), R"("a\u2028b\u2029")");
    EXPECT_EQ(script_data_escape("\"\xE2\x80\x94\""), "\"\xE2\x80\x94\"") << "other characters pass";
}

TEST(WebAssets, FillsTheShellOnce) {
    auto assets = WebAssets::load(FLOWGRES_SOURCE_DIR "/web");
    PageFill fill;
    fill.title = "{{boot}} <b>";
    fill.description = "{{title}}";
    fill.boot_json = R"({"x":"</script>"})";
    std::string page = assets->render_page(fill);
    EXPECT_NE(page.find("<title>{{boot}} &lt;b&gt;</title>"), std::string::npos) << page;
    EXPECT_NE(page.find(R"(content="{{title}}")"), std::string::npos);
    EXPECT_NE(page.find(R"({"x":"\u003c/script\u003e"})"), std::string::npos);
    EXPECT_EQ(page.find("og:image"), std::string::npos) << "no image, no og:image line";
    EXPECT_NE(page.find("/assets/page.js?v=" + assets->version()), std::string::npos);
    fill.image_url = "https://example.com/a.png";
    fill.embed = true;
    page = assets->render_page(fill);
    EXPECT_NE(page.find(R"(<meta property="og:image" content="https://example.com/a.png">)"), std::string::npos);
    EXPECT_NE(page.find(R"(<body class="embed">)"), std::string::npos);
}

TEST(WebAssets, ServesItsFilesOnly) {
    auto assets = WebAssets::load(FLOWGRES_SOURCE_DIR "/web");
    ASSERT_NE(assets->find("page.js"), nullptr);
    EXPECT_EQ(assets->find("page.js")->content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(assets->find("page.html"), nullptr);
    EXPECT_EQ(assets->find("../web/page.js"), nullptr);
    EXPECT_EQ(assets->find(""), nullptr);
    EXPECT_THROW(WebAssets::load("/nonexistent"), std::runtime_error);
}
