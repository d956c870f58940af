// One parsed HTTP/1.1 request and the response written for it. Plain data: no sockets, no
// database, so handlers and tests build them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowgres::http {

struct Request {
    std::string method;                                        // "GET"
    std::string target;                                        // "/api/v1/apps?page=2" as sent
    std::string path;                                          // "/api/v1/apps"
    std::string query;                                         // "page=2" (no '?')
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in order
    std::string body;
    bool keep_alive = true;
    std::string peer_address;  // the socket peer, "127.0.0.1"
    bool secure = false;       // it came over the HTTPS listener

    // The first header of that (lowercase) name.
    std::optional<std::string_view> header(std::string_view name) const;
    // Every line of that (lowercase) name, in order, joined by ", " (RFC 9110 §5.3: a list
    // header sent as several lines is that one list); "" when there is none.
    std::string header_list(std::string_view name) const;
};

struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    Response &with_header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

const char *reason_phrase(int status);

// The bytes on the wire: status line, headers, Content-Length, Connection, body. HEAD
// responses keep Content-Length but drop the body.
std::string serialize(const Response &response, bool keep_alive, bool head_request);
// The head of a response whose body follows in chunks (Transfer-Encoding: chunked), and the
// pieces: one chunk, and the last (empty) chunk that ends the body.
std::string serialize_stream_head(const Response &head, bool keep_alive);
std::string serialize_chunk(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// Decodes %XX and (in query strings) '+'; nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Query string → ordered (name, value) pairs, decoded; nullopt when malformed.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query);

// The last value of query parameter `name`; nullopt when absent or the query is malformed.
std::optional<std::string> query_value(const Request &request, std::string_view name);
// ?async=true: the caller is answered 202 at once and the work goes on (runs, database work).
bool asks_async(const Request &request);

// The token of an Authorization header of the Bearer scheme ("Bearer" in any case, RFC 6750
// §2.1); nullopt without one. The management API's keys and the runtime's visitor JWTs both.
std::optional<std::string> bearer_token(const Request &request);

}  // namespace flowgres::http
