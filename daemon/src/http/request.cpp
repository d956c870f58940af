// Request helpers and response serialisation.
#include "request.hpp"

#include <cstdio>

namespace flowgres::http {

std::optional<std::string_view> Request::header(std::string_view name) const {
    for (const auto &[key, value] : headers)
        if (key == name) return std::string_view(value);
    return std::nullopt;
}

std::string Request::header_list(std::string_view name) const {
    std::string joined;
    for (const auto &[key, value] : headers)
        if (key == name) joined += (joined.empty() ? "" : ", ") + value;
    return joined;
}

const char *reason_phrase(int status) {
    switch (status) {
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 301:
            return "Moved Permanently";
        case 304:
            return "Not Modified";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 415:
            return "Unsupported Media Type";
        case 422:
            return "Unprocessable Content";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 451:
            return "Unavailable For Legal Reasons";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

namespace {
void append_status_and_headers(std::string &out, const Response &response) {
    out += "HTTP/1.1 ";
    out += std::to_string(response.status);
    out += ' ';
    out += reason_phrase(response.status);
    out += "\r\n";
    for (const auto &[name, value] : response.headers) {
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
}
}  // namespace

std::string serialize_stream_head(const Response &head, bool keep_alive) {
    std::string out;
    append_status_and_headers(out, head);
    out += "Transfer-Encoding: chunked\r\n";
    out += keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
    return out;
}

std::string serialize_chunk(std::string_view data) {
    char size[20];
    int length = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
    std::string out;
    out.reserve(static_cast<size_t>(length) + data.size() + 2);
    out.append(size, static_cast<size_t>(length));
    out += data;
    out += "\r\n";
    return out;
}

std::string serialize(const Response &response, bool keep_alive, bool head_request) {
    std::string out;
    out.reserve(160 + response.body.size());
    append_status_and_headers(out, response);
    // 204 and 304 have no content, and say nothing of its length (RFC 9110 §8.6).
    bool bodiless = response.status == 204 || response.status == 304;
    if (!bodiless) {
        out += "Content-Length: ";
        out += std::to_string(response.body.size());
        out += "\r\n";
    }
    out += keep_alive ? "\r\n" : "Connection: close\r\n\r\n";
    if (!head_request && !bodiless) out += response.body;
    return out;
}

namespace {
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return std::nullopt;
            int high = hex_value(text[i + 1]), low = hex_value(text[i + 2]);
            if (high < 0 || low < 0) return std::nullopt;
            out += static_cast<char>(high * 16 + low);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!query.empty()) {
        size_t end = query.find('&');
        std::string_view part = query.substr(0, end);
        query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
        if (part.empty()) continue;
        size_t equals = part.find('=');
        auto name = percent_decode(part.substr(0, equals), true);
        auto value =
            percent_decode(equals == std::string_view::npos ? std::string_view() : part.substr(equals + 1), true);
        if (!name || !value) return std::nullopt;
        out.emplace_back(std::move(*name), std::move(*value));
    }
    return out;
}

std::optional<std::string> query_value(const Request &request, std::string_view name) {
    std::optional<std::string> found;
    if (auto query = parse_query(request.query))
        for (auto &[key, value] : *query)
            if (key == name) found = std::move(value);
    return found;
}

bool asks_async(const Request &request) { return query_value(request, "async") == "true"; }

std::optional<std::string> bearer_token(const Request &request) {
    auto header = request.header("authorization");
    if (!header || header->size() < 7) return std::nullopt;
    std::string scheme(header->substr(0, 7));
    for (char &c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "bearer ") return std::nullopt;
    std::string_view token = header->substr(7);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    return std::string(token);
}

}  // namespace flowgres::http
