// Envelope building and database error mapping.
#include "envelope.hpp"

#include <openssl/rand.h>

#include <cctype>
#include <cstdint>
#include <random>

#include "flowgres/json.hpp"

namespace flowgres::daemon {
namespace {

// Request, trace and span ids need to be unique, not secret: a per-thread generator seeded
// from the CSPRNG makes them without a system call per request.
std::string random_hex(size_t bytes) {
    thread_local std::mt19937_64 generator = [] {
        uint64_t seed = 0;
        RAND_bytes(reinterpret_cast<unsigned char *>(&seed), sizeof(seed));
        return std::mt19937_64(seed);
    }();
    static const char hex[] = "0123456789abcdef";
    std::string out(bytes * 2, '0');
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t value = generator();
        for (size_t j = 0; j < 8 && i + j < bytes; j++, value >>= 8) {
            out[2 * (i + j)] = hex[(value >> 4) & 15];
            out[2 * (i + j) + 1] = hex[value & 15];
        }
    }
    return out;
}

bool is_lower_hex(std::string_view text, size_t length) {
    if (text.size() != length) return false;
    bool nonzero = false;
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        nonzero |= c != '0';
    }
    return nonzero;
}

std::string tail(const TraceContext &trace) {
    return ",\"trace_id\":\"" + trace.trace_id + "\",\"request_id\":" + json_quote(trace.request_id) + "}";
}

http::Response with_trace_headers(http::Response response, const TraceContext &trace) {
    response.with_header("Content-Type", "application/json")
        .with_header("X-Request-Id", trace.request_id)
        .with_header("traceparent", trace.traceparent());
    return response;
}

}  // namespace

TraceContext trace_context_of(const http::Request &request) {
    TraceContext trace;
    if (auto id = request.header("x-request-id")) {
        bool valid = !id->empty() && id->size() <= 128;
        for (char c : *id) valid &= std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
        if (valid) trace.request_id = std::string(*id);
    }
    if (trace.request_id.empty()) trace.request_id = "req_" + random_hex(12);
    // traceparent: 00-<trace id 32 hex>-<parent id 16 hex>-<flags 2 hex> (W3C Trace Context §3.2).
    if (auto parent = request.header("traceparent")) {
        std::string_view text = *parent;
        if (text.size() == 55 && text.substr(0, 3) == "00-" && text[35] == '-' && text[52] == '-' &&
            is_lower_hex(text.substr(3, 32), 32) && is_lower_hex(text.substr(36, 16), 16))
            trace.trace_id = std::string(text.substr(3, 32));
    }
    if (trace.trace_id.empty()) trace.trace_id = random_hex(16);
    trace.span_id = random_hex(8);
    return trace;
}

http::Response success_response(int status, std::string_view data_json, const TraceContext &trace) {
    http::Response response;
    response.status = status;
    response.body.reserve(data_json.size() + 160);
    response.body = "{\"code\":\"OK\",\"message\":\"ok\",\"data\":";
    response.body += data_json.empty() ? std::string_view("null") : data_json;
    response.body += tail(trace);
    return with_trace_headers(std::move(response), trace);
}

http::Response error_response(ErrorCode code, std::string_view message, std::string_view details_json,
                              const TraceContext &trace) {
    const ErrorInfo &info = error_info(code);
    std::string name = json_quote(info.name), text = json_quote(message);
    http::Response response;
    response.status = info.http_status;
    response.body =
        "{\"code\":" + name + ",\"message\":" + text + ",\"error_code\":" + name + ",\"error_message\":" + text +
        ",\"data\":{\"details\":" + std::string(details_json.empty() ? "null" : details_json) + "}" + tail(trace);
    return with_trace_headers(std::move(response), trace);
}

DatabaseError map_database_error(std::string_view sqlstate, std::string_view message, std::string_view detail) {
    if (sqlstate.substr(0, 2) == "FG") {
        ErrorCode code = error_code_from_sqlstate(sqlstate).value_or(ErrorCode::INTERNAL_ERROR);
        std::string details = "null";
        Json parsed;
        try {
            parsed = parse_json(detail, "detail");
        } catch (const Error &) {
        }
        if (parsed && json_is_object(parsed.get())) {
            if (const char *name = json_string_value(json_object_get(parsed.get(), "error_code")))
                code = error_code_from_name(name).value_or(code);
            if (const json_t *inner = json_object_get(parsed.get(), "details")) details = dump_json(inner);
        }
        return {code, std::string(message), details, code == ErrorCode::INTERNAL_ERROR};
    }
    // Input PostgreSQL itself refused: wrong text for a type, out of range, too long.
    if (sqlstate == "22P02" || sqlstate == "22007" || sqlstate == "22008" || sqlstate == "22003" ||
        sqlstate == "22001" || sqlstate == "22023" || sqlstate == "22021" || sqlstate == "2202E" || sqlstate == "54000" ||
        sqlstate == "22P05")
        return {ErrorCode::VALIDATION_FAILED, std::string(message), "null", false};
    // Cancelled by statement_timeout, serialization failures, a server going down: retryable.
    if (sqlstate == "57014" || sqlstate == "40001" || sqlstate == "40P01" || sqlstate.substr(0, 2) == "08" ||
        sqlstate == "57P01" || sqlstate == "57P03" || sqlstate == "53300")
        return {ErrorCode::DB_UNAVAILABLE, "the database could not answer; retry", "null", true};
    return {ErrorCode::INTERNAL_ERROR, "internal error", "null", true};
}

}  // namespace flowgres::daemon
