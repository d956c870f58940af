// The error table: unique names and SQLSTATEs, HTTP statuses, the DETAIL document.
#include <gtest/gtest.h>

#include <set>

#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"

using namespace flowgres;

TEST(ErrorTable, NamesAndSqlstatesAreUniqueAndInClassFG) {
    std::set<std::string_view> names, states;
    for (const ErrorInfo *row = error_table_begin(); row != error_table_end(); row++) {
        EXPECT_TRUE(names.insert(row->name).second) << row->name;
        EXPECT_TRUE(states.insert(row->sqlstate).second) << row->sqlstate;
        EXPECT_EQ(row->sqlstate.size(), 5u);
        EXPECT_EQ(row->sqlstate.substr(0, 2), "FG");
        EXPECT_GE(row->http_status, 400);
        EXPECT_LT(row->http_status, 600);
        EXPECT_EQ(error_info(row->code).name, row->name);
    }
}

TEST(ErrorTable, LooksUpByNameAndSqlstate) {
    EXPECT_EQ(error_code_from_name("APP_NOT_FOUND"), ErrorCode::APP_NOT_FOUND);
    EXPECT_EQ(error_code_from_sqlstate("FG060"), ErrorCode::STATE_CONFLICT);
    EXPECT_FALSE(error_code_from_name("NOPE"));
    EXPECT_EQ(error_info(ErrorCode::PERMISSION_DENIED).http_status, 403);
    EXPECT_EQ(error_info(ErrorCode::STATE_CONFLICT).http_status, 409);
}

TEST(ErrorDetail, IsJsonWithCodeAndDetails) {
    Error error = field_error("slug", "must be \"short\"");
    Json detail = parse_json(error.detail_document(), "detail");
    EXPECT_STREQ(json_string_value(json_object_get(detail.get(), "error_code")), "VALIDATION_FAILED");
    json_t *first = json_array_get(json_object_get(detail.get(), "details"), 0);
    EXPECT_STREQ(json_string_value(json_object_get(first, "field")), "slug");
    EXPECT_STREQ(json_string_value(json_object_get(first, "message")), "must be \"short\"");
}

TEST(ValidationProblems, ReportsEveryProblemAtOnce) {
    ValidationProblems problems;
    EXPECT_NO_THROW(problems.throw_if_any());
    problems.add("a", "bad");
    problems.add("b", "worse");
    try {
        problems.throw_if_any();
        FAIL() << "expected a throw";
    } catch (const Error &error) {
        EXPECT_EQ(error.code(), ErrorCode::VALIDATION_FAILED);
        EXPECT_EQ(error.message(), "a: bad (and 1 more)");
        Json details = parse_json(error.details_json(), "details");
        EXPECT_EQ(json_array_size(details.get()), 2u);
    }
}

TEST(Json, ParseErrorsAreBadRequestNamingTheInput) {
    try {
        parse_json("{\"a\": ", "changes");
        FAIL();
    } catch (const Error &error) {
        EXPECT_EQ(error.code(), ErrorCode::BAD_REQUEST);
        EXPECT_NE(error.message().find("changes"), std::string::npos);
    }
    EXPECT_THROW(parse_json("{\"a\":1,\"a\":2}", "x"), Error);  // duplicate keys refused
}
