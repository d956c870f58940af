// The response envelope of seed §49/§53 and the mapping of database errors onto it.
//   success: {"code":"OK","message":"ok","data":…,"trace_id":…,"request_id":…}
//   error:   {"code":E,"message":M,"error_code":E,"error_message":M,"data":{"details":…},
//             "trace_id":…,"request_id":…}
// The HTTP status of an error comes from core/errors (one table for SQL and HTTP).
#pragma once

#include <string>
#include <string_view>

#include "flowgres/errors.hpp"
#include "http/request.hpp"

namespace flowgres::daemon {

struct TraceContext {
    std::string request_id;  // echoed X-Request-Id, or made here
    std::string trace_id;    // 32 hex: from traceparent, or made here
    std::string span_id;     // 16 hex: this server's span
    // W3C traceparent for the response (and for calls this request makes).
    std::string traceparent() const { return "00-" + trace_id + "-" + span_id + "-01"; }
};

// Reads X-Request-Id (kept when 1–128 of [A-Za-z0-9._-]) and traceparent (version 00, non-zero
// ids); makes new ids otherwise.
TraceContext trace_context_of(const http::Request &request);

http::Response success_response(int status, std::string_view data_json, const TraceContext &trace);
http::Response error_response(ErrorCode code, std::string_view message, std::string_view details_json,
                              const TraceContext &trace);

struct DatabaseError {
    ErrorCode code;
    std::string message;
    std::string details_json;  // "null" when none
    bool internal;             // not the client's fault: log it, tell the client little
};

// A failed statement's SQLSTATE, message and DETAIL → flowgres error. FG* errors carry their
// code and details in DETAIL; a few PostgreSQL errors are the client's (bad input syntax);
// the rest are internal.
DatabaseError map_database_error(std::string_view sqlstate, std::string_view message, std::string_view detail);

}  // namespace flowgres::daemon
