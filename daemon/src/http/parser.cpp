// llhttp callbacks bound to RequestParser members, and the limits they enforce.
#include "parser.hpp"

#include <cctype>

namespace flowgres::http {

const llhttp_settings_t &RequestParser::settings() {
    static const llhttp_settings_t bound = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_header_field = on_header_field;
        s.on_header_value = on_header_value;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        return s;
    }();
    return bound;
}

RequestParser::RequestParser(ParserLimits limits, BodyLimit body_limit)
    : limits_(limits), body_limit_(std::move(body_limit)) {
    llhttp_init(&parser_, HTTP_REQUEST, &settings());
    parser_.data = this;
}

static RequestParser &self(llhttp_t *parser) {
    return *static_cast<RequestParser *>(parser->data);
}

int RequestParser::fail(int status, std::string code, std::string message) {
    failure_ = ParseFailure{status, std::move(code), std::move(message)};
    return HPE_USER;
}

int RequestParser::count_header_bytes(size_t length) {
    header_bytes_ += length;
    if (header_bytes_ > limits_.max_header_bytes)
        return fail(431, "HEADERS_TOO_LARGE",
                    "the request line and headers exceed " + std::to_string(limits_.max_header_bytes) + " bytes");
    return HPE_OK;
}

int RequestParser::on_message_begin(llhttp_t *parser) {
    RequestParser &p = self(parser);
    p.current_ = Request{};
    p.header_bytes_ = 0;
    p.in_value_ = false;
    p.in_message_ = true;
    p.in_body_ = false;
    return HPE_OK;
}

int RequestParser::on_url(llhttp_t *parser, const char *at, size_t length) {
    RequestParser &p = self(parser);
    if (p.current_.target.size() + length > p.limits_.max_url_bytes)
        return p.fail(414, "URI_TOO_LONG",
                      "the request target exceeds " + std::to_string(p.limits_.max_url_bytes) + " bytes");
    p.current_.target.append(at, length);
    return p.count_header_bytes(length);
}

int RequestParser::on_header_field(llhttp_t *parser, const char *at, size_t length) {
    RequestParser &p = self(parser);
    if (p.in_value_ || p.current_.headers.empty()) p.current_.headers.emplace_back();
    p.in_value_ = false;
    p.current_.headers.back().first.append(at, length);
    return p.count_header_bytes(length + 4);  // ": " and CRLF count against the block too
}

int RequestParser::on_header_value(llhttp_t *parser, const char *at, size_t length) {
    RequestParser &p = self(parser);
    p.in_value_ = true;
    p.current_.headers.back().second.append(at, length);
    return p.count_header_bytes(length);
}

int RequestParser::on_headers_complete(llhttp_t *parser) {
    RequestParser &p = self(parser);
    Request &request = p.current_;
    p.in_body_ = true;
    if (parser->http_major != 1) return p.fail(505, "BAD_REQUEST", "only HTTP/1.0 and HTTP/1.1 are served");
    for (auto &[name, value] : request.headers) {
        for (char &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    }
    request.method = llhttp_method_name(static_cast<llhttp_method_t>(parser->method));
    size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    request.keep_alive = llhttp_should_keep_alive(parser) != 0;

    bool has_length = (parser->flags & F_CONTENT_LENGTH) != 0;
    bool has_body = (has_length && parser->content_length > 0) || (parser->flags & F_CHUNKED) != 0;
    // The route's limit is looked up only when a body is coming (most requests have none).
    p.body_limit_bytes_ = has_body ? p.body_limit_(request) : 0;
    if (has_length && parser->content_length > p.body_limit_bytes_)
        return p.fail(413, "PAYLOAD_TOO_LARGE",
                      "the request body exceeds " + std::to_string(p.body_limit_bytes_) + " bytes");
    if (auto expect = request.header("expect")) {
        std::string lowered(*expect);
        for (char &c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lowered == "100-continue" && has_body && parser->http_minor == 1) p.continue_requested_ = true;
    }
    return HPE_OK;
}

int RequestParser::on_body(llhttp_t *parser, const char *at, size_t length) {
    RequestParser &p = self(parser);
    if (p.current_.body.size() + length > p.body_limit_bytes_)
        return p.fail(413, "PAYLOAD_TOO_LARGE",
                      "the request body exceeds " + std::to_string(p.body_limit_bytes_) + " bytes");
    p.current_.body.append(at, length);
    return HPE_OK;
}

int RequestParser::on_message_complete(llhttp_t *parser) {
    RequestParser &p = self(parser);
    p.ready_.push_back(std::move(p.current_));
    p.current_ = Request{};
    p.in_message_ = false;
    p.in_body_ = false;
    return HPE_OK;
}

std::optional<ParseFailure> RequestParser::feed(const char *data, size_t size) {
    if (failure_) return failure_;
    llhttp_errno_t error = llhttp_execute(&parser_, data, size);
    if (error == HPE_PAUSED_UPGRADE) {
        // No protocol upgrades are offered: the request was answered as plain HTTP, and what
        // follows on this connection would not be HTTP. Stop reading it.
        return failure_ = ParseFailure{400, "BAD_REQUEST", "protocol upgrades are not supported"};
    }
    if (error == HPE_OK) return std::nullopt;
    if (!failure_) {
        const char *reason = llhttp_get_error_reason(&parser_);
        failure_ = ParseFailure{400, "BAD_REQUEST",
                                std::string("malformed HTTP request: ") + (reason ? reason : llhttp_errno_name(error))};
    }
    return failure_;
}

}  // namespace flowgres::http
