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
