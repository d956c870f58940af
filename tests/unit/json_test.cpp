// jansson glue: jsonb_safe keeps a run recordable whatever NUL its data carries.
#include "flowgres/json.hpp"

#include <gtest/gtest.h>

using namespace flowgres;

TEST(JsonbSafe, ReplacesNulEscapesAndNothingElse) {
    Json with_nul(json_stringn("a\0b", 3));
    EXPECT_EQ(dump_json(with_nul.get()), "\"a\\u0000b\"");
    EXPECT_EQ(jsonb_safe(dump_json(with_nul.get())), "\"a\\ufffdb\"");
    // A backslash followed by the letters u0000 is text, not a NUL: left alone.
    Json literal(json_string("\\u0000"));
    EXPECT_EQ(jsonb_safe(dump_json(literal.get())), dump_json(literal.get()));
    Json both(json_stringn("\\\0", 2));  // a backslash, then a NUL
    EXPECT_EQ(jsonb_safe(dump_json(both.get())), "\"\\\\\\ufffd\"");
    EXPECT_EQ(jsonb_safe("{\"k\":\"\\u0000\\u0000\"}"), "{\"k\":\"\\ufffd\\ufffd\"}");
    EXPECT_EQ(jsonb_safe("{}"), "{}");
}

// json_quote's fast path for text needing no escape must write exactly what jansson writes.
TEST(JsonQuote, MatchesJanssonForEveryKindOfText) {
    const std::string samples[] = {"",
                                   "req_4305877ab4429a75224d9f89",
                                   "/api/v1/apps/{app_id}/runs",
                                   "say \"hi\"",
                                   "back\\slash",
                                   std::string("tab\there\nand a line"),
                                   std::string("nul\0byte", 8),
                                   "\x7f delete",
                                   "caf\xc3\xa9 \xe2\x9c\x93",
                                   "<script>alert(1)</script>",
                                   " ~!@#$%^&*()_+`-={}|[]:;'<>?,./"};
    for (const std::string &text : samples) {
        Json value(json_stringn(text.data(), text.size()));
        EXPECT_EQ(json_quote(text), dump_json(value.get())) << text;
    }
    EXPECT_EQ(json_quote("\xff not UTF-8"), "\"\"") << "invalid UTF-8 is refused, as before";
}
