// The route table: matching, 405 methods, the SQL each route runs, and that every function a
// route names is declared by the extension's SQL scripts.
#include "router.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "arguments.hpp"
#include "flowgres/errors.hpp"

using namespace flowgres::daemon;

TEST(Router, MatchesPathParametersAndPrefersLiterals) {
    auto match = match_route("POST", "/api/v1/workspaces/11111111-1111-1111-1111-111111111111/members/accept");
    ASSERT_TRUE(match.route);
    EXPECT_STREQ(match.route->operation, "acceptInvitation");
    auto member = match_route("PATCH", "/api/v1/workspaces/w/members/u");
    ASSERT_TRUE(member.route);
    EXPECT_STREQ(member.route->operation, "changeMemberRole");
    ASSERT_EQ(member.path_parameters.size(), 2u);
    EXPECT_EQ(member.path_parameters[1], (std::pair<std::string, std::string>{"user_id", "u"}));
}

TEST(Router, WrongMethodListsAllowedOnesAndUnknownPathsMatchNothing) {
    auto match = match_route("DELETE", "/api/v1/apps/x/versions");
    EXPECT_FALSE(match.route);
    EXPECT_EQ(std::set<std::string>(match.allowed_methods.begin(), match.allowed_methods.end()),
              (std::set<std::string>{"GET", "POST"}));
    EXPECT_TRUE(match_route("GET", "/api/v1/nothing").allowed_methods.empty());
    EXPECT_FALSE(match_route("GET", "/api/v1/apps//").route);
    EXPECT_FALSE(match_route("GET", "api/v1/apps/x").route);
    EXPECT_TRUE(match_route("HEAD", "/api/v1/apps/x").route) << "HEAD is served by GET routes";
}

TEST(Router, RouteSqlBindsEveryArgumentWithItsType) {
    auto match = match_route("POST", "/api/v1/apps/a/versions");
    ASSERT_TRUE(match.route);
    EXPECT_EQ(route_sql(*match.route),
              "select flowgres.version_create($1::uuid, $2::text, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, "
              "$7::text)::text");
    EXPECT_STREQ(required_scope(*match.route), "write");
    EXPECT_STREQ(required_scope(*match_route("GET", "/api/v1/apps/a").route), "read");
}

TEST(Router, EveryRouteIsUniqueAndCallsADeclaredFunctionWithDocumentedErrors) {
    std::string sql;
    for (const auto &entry : std::filesystem::directory_iterator(FLOWGRES_SOURCE_DIR "/sql")) {
        std::ifstream file(entry.path());
        std::stringstream text;
        text << file.rdbuf();
        sql += text.str();
    }
    std::set<std::string> seen;
    for (const Route &route : routes()) {
        EXPECT_TRUE(seen.insert(std::string(route.method) + " " + route.pattern).second) << route.pattern;
        EXPECT_NE(sql.find("create function " + std::string(route.function) + "("), std::string::npos)
            << route.function;
        for (const char *code : route.errors) EXPECT_TRUE(flowgres::error_code_from_name(code)) << code;
    }
}

namespace {
flowgres::http::Request request_with(std::string method, std::string target, std::string body = "") {
    flowgres::http::Request request;
    request.method = std::move(method);
    request.target = target;
    size_t question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) request.query = target.substr(question + 1);
    request.body = std::move(body);
    return request;
}

SqlArguments arguments_for(const flowgres::http::Request &request) {
    RouteMatch match = match_route(request.method, request.path);
    if (!match.route) throw std::runtime_error("no route");
    return build_arguments(*match.route, match, request);
}

flowgres::ErrorCode error_of(const flowgres::http::Request &request) {
    try {
        arguments_for(request);
    } catch (const flowgres::Error &error) {
        return error.code();
    }
    return flowgres::ErrorCode::INTERNAL_ERROR;
}
}  // namespace

TEST(Arguments, BodyFieldsBecomeTypedArgumentsInOrder) {
    auto arguments = arguments_for(request_with("POST", "/api/v1/workspaces", R"({"slug":"acme","name":"Acme"})"));
    ASSERT_EQ(arguments.size(), 4u);
    EXPECT_EQ(arguments[0], "Acme");
    EXPECT_EQ(arguments[1], "acme");
    EXPECT_FALSE(arguments[2]);
    auto version = arguments_for(request_with("POST", "/api/v1/apps/11111111-1111-1111-1111-111111111111/versions",
                                              R"({"version":"1.0.0","workflow":{"nodes":[]}})"));
    EXPECT_EQ(version[2], R"({"nodes":[]})");
}

TEST(Arguments, QueryFiltersBecomeATypedObject) {
    auto arguments = arguments_for(request_with(
        "GET", "/api/v1/workspaces/11111111-1111-1111-1111-111111111111/apps?page=2&q=x%22y&status=draft"));
    ASSERT_EQ(arguments.size(), 2u);
    EXPECT_EQ(arguments[1], R"({"status":"draft","q":"x\"y","page":2})");
}

TEST(Arguments, ProblemsAreRefusedWithTheirCodes) {
    using flowgres::ErrorCode;
    EXPECT_EQ(error_of(request_with("POST", "/api/v1/workspaces", R"({"name":1})")), ErrorCode::VALIDATION_FAILED);
    EXPECT_EQ(error_of(request_with("POST", "/api/v1/workspaces", R"({"name":"a","extra":1})")),
              ErrorCode::VALIDATION_FAILED);
    EXPECT_EQ(error_of(request_with("POST", "/api/v1/workspaces", R"({})")), ErrorCode::VALIDATION_FAILED);
    EXPECT_EQ(error_of(request_with("POST", "/api/v1/workspaces", R"([1])")), ErrorCode::VALIDATION_FAILED);
    EXPECT_EQ(error_of(request_with("POST", "/api/v1/workspaces", R"({"name":)")), ErrorCode::BAD_REQUEST);
    EXPECT_EQ(error_of(request_with("POST", "/api/v1/workspaces", "{\"name\":\"\xff\"}")), ErrorCode::BAD_REQUEST);
    EXPECT_EQ(error_of(request_with("GET", "/api/v1/apps/..%2F..%2Fetc")), ErrorCode::APP_NOT_FOUND);
    EXPECT_EQ(error_of(request_with("GET", "/api/v1/workspaces?include_deleted=maybe")), ErrorCode::VALIDATION_FAILED);
    EXPECT_EQ(error_of(request_with("GET", "/api/v1/workspaces?x=1")), ErrorCode::VALIDATION_FAILED);
    EXPECT_EQ(error_of(request_with("GET", "/api/v1/workspaces?include_deleted=true&include_deleted=false")),
              ErrorCode::VALIDATION_FAILED);
    auto with_type = request_with("POST", "/api/v1/workspaces", R"({"name":"a"})");
    with_type.headers.emplace_back("content-type", "text/plain");
    EXPECT_EQ(error_of(with_type), ErrorCode::UNSUPPORTED_MEDIA_TYPE);
}

TEST(Arguments, EveryProblemIsListedAtOnce) {
    try {
        arguments_for(request_with("POST", "/api/v1/workspaces", R"({"slug":5,"colour":"red"})"));
        FAIL() << "expected VALIDATION_FAILED";
    } catch (const flowgres::Error &error) {
        for (const char *field : {"\"name\"", "\"slug\"", "\"colour\""})
            EXPECT_NE(error.details_json().find(field), std::string::npos) << error.details_json();
    }
}

// The postgres executable exports an SQL function named json_object; a call to jansson's
// json_object() from code that runs inside PostgreSQL binds to it and crashes the backend.
// core/ and extension/ must use new_json_object().
TEST(SourceRules, NoJanssonJsonObjectCallsInCodeThatRunsInPostgres) {
    for (const char *folder : {"/core/src", "/extension/src"}) {
        for (const auto &entry : std::filesystem::directory_iterator(std::string(FLOWGRES_SOURCE_DIR) + folder)) {
            std::ifstream file(entry.path());
            std::stringstream text;
            text << file.rdbuf();
            const std::string source = text.str();
            for (size_t at = source.find("json_object()"); at != std::string::npos; at = source.find("json_object()", at + 1))
                EXPECT_TRUE(at >= 4 && source.compare(at - 4, 4, "new_") == 0) << entry.path() << " at offset " << at;
        }
    }
}
