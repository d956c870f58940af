// The boundary between PostgreSQL and C++ (pg_duckdb's cpp_wrapper is the model).
//  - PostgreSQL → C++: every SQL-callable function's body runs inside run_sql_function, which
//    catches every C++ exception and raises the PostgreSQL error only after C++ objects are gone.
//  - C++ → PostgreSQL: calls that may ereport go through guard(), which turns the longjmp into
//    a PostgresError exception. Nothing else in the extension calls such functions directly.
// Not for: business rules. Files with rules include this header and never PostgreSQL's.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace flowgres {

// What a SQL function returns; the kind must match its SQL declaration.
struct SqlValue {
    enum class Kind { null, jsonb, json, boolean, uuid, text, integer };
    Kind kind = Kind::null;
    std::string text;  // json(b) document, uuid or text
    bool flag = false;
    long long number = 0;

    static SqlValue null() { return {}; }
    static SqlValue jsonb(std::string document) { return {Kind::jsonb, std::move(document), false}; }
    // For a function that returns json: the document is returned as the text it is, neither
    // parsed nor checked, so it must be JSON the function built itself.
    static SqlValue json(std::string document) { return {Kind::json, std::move(document), false}; }
    static SqlValue boolean(bool value) { return {Kind::boolean, {}, value}; }
    static SqlValue uuid(std::string value) { return {Kind::uuid, std::move(value), false}; }
    static SqlValue text_value(std::string value) { return {Kind::text, std::move(value), false}; }
    static SqlValue integer(long long value) { return {Kind::integer, {}, false, value}; }
};

// The arguments of the current SQL call, read as plain C++ values. Each reader takes the
// argument's position and its SQL name (used in error messages); a required_* reader throws
// VALIDATION_FAILED "<name>: is required" for a NULL.
class CallArgs {
public:
    explicit CallArgs(void *function_call_info) : fcinfo_(function_call_info) {}

    bool is_null(int position) const;
    std::optional<std::string> text(int position) const;
    std::optional<std::string> uuid(int position) const;
    std::optional<std::string> jsonb(int position) const;
    std::optional<bool> boolean(int position) const;
    // A timestamptz argument as PostgreSQL prints it (read back with ::timestamptz).
    std::optional<std::string> timestamptz(int position) const;
    std::optional<long long> integer(int position) const;
    std::optional<long long> bigint(int position) const;

    std::string required_text(int position, std::string_view name) const;
    std::string required_uuid(int position, std::string_view name) const;
    std::string required_jsonb(int position, std::string_view name) const;

private:
    void *fcinfo_;
};

using SqlFunctionBody = SqlValue (*)(CallArgs &);

// Runs `body` for the PostgreSQL call `fcinfo` with SPI connected; returns its Datum.
// Never lets a C++ exception escape; raises flowgres errors with their SQLSTATE and DETAIL.
unsigned long run_sql_function(void *fcinfo, SqlFunctionBody body);

}  // namespace flowgres
