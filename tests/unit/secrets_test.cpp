// Secret names, sealing contexts, previews and masking (core/secrets).
#include "flowgres/secrets.hpp"

#include <gtest/gtest.h>

#include "flowgres/json.hpp"

using namespace flowgres;

TEST(Secrets, NamesAreTemplateIdentifiers) {
    EXPECT_TRUE(secrets::is_name("OPENAI_KEY"));
    EXPECT_TRUE(secrets::is_name("_x1"));
    EXPECT_FALSE(secrets::is_name(""));
    EXPECT_FALSE(secrets::is_name("1KEY"));
    EXPECT_FALSE(secrets::is_name("A-B"));
    EXPECT_FALSE(secrets::is_name("A.B"));
    EXPECT_FALSE(secrets::is_name(std::string(65, 'A')));
    EXPECT_TRUE(secrets::is_name(std::string(64, 'A')));
}

TEST(Secrets, ContextBindsWorkspaceAndName) {
    EXPECT_EQ(secrets::sealing_context("ws", "KEY"), "workspace_secret:ws:KEY");
    EXPECT_NE(secrets::sealing_context("ws", "KEY"), secrets::sealing_context("ws", "KEY2"));
}

TEST(Secrets, PreviewShowsTooLittleToUse) {
    EXPECT_EQ(secrets::preview("sk-abcdefghijklmnop1234"), "…1234");
    EXPECT_EQ(secrets::preview("short-secret"), "…") << "under 16 bytes nothing shows";
    std::string utf8 = "0123456789abcdef\xC3\xA9\xC3\xA9";  // ends in two two-byte characters
    EXPECT_EQ(secrets::preview(utf8), "…\xC3\xA9\xC3\xA9");
    std::string cut = "0123456789abcdefgh\xE2\x82\xAC";  // the last four bytes start mid-character
    EXPECT_EQ(secrets::preview(cut), "…h\xE2\x82\xAC");
}

TEST(Secrets, MaskingReplacesEveryOccurrence) {
    secrets::Values values = {{"TOKEN", "s3cr3t-value"}, {"TINY", "ab"}};
    EXPECT_EQ(secrets::mask_text("Bearer s3cr3t-value and s3cr3t-value", values),
              "Bearer [secret:TOKEN] and [secret:TOKEN]");
    EXPECT_EQ(secrets::mask_text("about ab", values), "about ab") << "values under 4 bytes are left alone";
    Json document = parse_json(
        R"({"echo": {"headers": {"authorization": "Bearer s3cr3t-value"}}, "list": ["s3cr3t-value"], "s3cr3t-value": 1, "n": 5})",
        "d");
    secrets::mask_json(document.get(), values);
    EXPECT_EQ(dump_json(document.get()).find("s3cr3t-value"), std::string::npos) << dump_json(document.get());
    EXPECT_STREQ(json_string_value(json_array_get(json_object_get(document.get(), "list"), 0)), "[secret:TOKEN]");
    EXPECT_EQ(json_integer_value(json_object_get(document.get(), "[secret:TOKEN]")), 1) << "keys are masked too";
    EXPECT_EQ(json_integer_value(json_object_get(document.get(), "n")), 5);
}

TEST(Secrets, MaskingALongTextMasksEveryOccurrence) {
    std::string text;
    for (int i = 0; i < 100000; i++) text += "xx s3cr3t-value ";
    std::string masked = secrets::mask_text(text, {{"T", "s3cr3t-value"}});
    EXPECT_EQ(masked.find("s3cr3t-value"), std::string::npos);
    EXPECT_EQ(masked.size(), text.size() + 100000 * (std::string("[secret:T]").size() - 12));
}
