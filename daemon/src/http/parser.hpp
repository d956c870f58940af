// llhttp glue (node's node_http_parser.cc is the model): bytes in, complete requests out, the
// limits enforced inside the callbacks so an oversized request is refused as soon as it shows,
// before its body is read. Not for: sockets or timeouts (connection.cpp owns those).
#pragma once

#include <llhttp.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "request.hpp"

namespace flowgres::http {

struct ParserLimits {
    size_t max_header_bytes = 16 * 1024;  // request line + header block → 431
    size_t max_url_bytes = 8 * 1024;      // request target → 414
};

// Why parsing stopped: the status to answer with, then close the connection.
struct ParseFailure {
    int status;           // 400, 413, 414, 431, 505
    std::string code;     // flowgres error code name: BAD_REQUEST, PAYLOAD_TOO_LARGE, …
    std::string message;  // for the client
};

class RequestParser {
public:
    // Called once the headers of a request are in: the largest body its route accepts.
    using BodyLimit = std::function<size_t(const Request &)>;

    RequestParser(ParserLimits limits, BodyLimit body_limit);
    RequestParser(const RequestParser &) = delete;
    RequestParser &operator=(const RequestParser &) = delete;

    // Parses `size` bytes. Complete requests are appended to ready(); a protocol violation or
    // a limit returns its failure, after which the parser accepts nothing more.
    std::optional<ParseFailure> feed(const char *data, size_t size);

    std::deque<Request> &ready() { return ready_; }
    // Some bytes of a request that is not complete yet have been read.
    bool mid_message() const { return in_message_; }
    // Its headers are in and its body is arriving.
    bool in_body() const { return in_body_; }
    // Set when a request's headers asked for "Expect: 100-continue" and its body is acceptable;
    // the connection answers 100 Continue and clears it.
    bool take_continue_request() {
        bool value = continue_requested_;
        continue_requested_ = false;
        return value;
    }

private:
    static int on_message_begin(llhttp_t *parser);
    static int on_url(llhttp_t *parser, const char *at, size_t length);
    static int on_header_field(llhttp_t *parser, const char *at, size_t length);
    static int on_header_value(llhttp_t *parser, const char *at, size_t length);
    static int on_headers_complete(llhttp_t *parser);
    static int on_body(llhttp_t *parser, const char *at, size_t length);
    static int on_message_complete(llhttp_t *parser);
    static const llhttp_settings_t &settings();

    int fail(int status, std::string code, std::string message);
    int count_header_bytes(size_t length);

    llhttp_t parser_;
    ParserLimits limits_;
    BodyLimit body_limit_;
    Request current_;
    size_t header_bytes_ = 0;
    size_t body_limit_bytes_ = 0;
    bool in_value_ = false;
    bool in_message_ = false;
    bool in_body_ = false;
    bool continue_requested_ = false;
    std::optional<ParseFailure> failure_;
    std::deque<Request> ready_;
};

}  // namespace flowgres::http
