// The HTTP client of http steps: asynchronous on the run's loop (uv_getaddrinfo in libuv's
// thread pool, uv_tcp, llhttp for the response), every connected address checked against the
// egress policy, redirects followed up to a limit (each hop checked again), the response
// capped in size, and cancellable. https runs TLS over the same socket (tls_client.hpp), with
// the peer's certificate and name verified.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "executor/egress.hpp"
#include "executor/tls_client.hpp"

namespace flowgres::executor {

struct HttpFetch {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    size_t max_response_bytes = 1024 * 1024;
    size_t max_header_bytes = 64 * 1024;  // the status line and header block, per response
    size_t max_headers = 100;
    // A hostile or stuck server holds nothing for longer than these: resolving and connecting,
    // then the first response byte after the request went out (TLS handshake included), then
    // each silence between reads. 0: no limit of that kind.
    uint64_t connect_timeout_ms = 5000;
    uint64_t first_byte_timeout_ms = 30000;
    uint64_t idle_timeout_ms = 30000;
    int max_redirects = 3;
    std::shared_ptr<const TlsClientContext> tls;  // for https URLs (refused without)
    // Streaming: the body of a final 2xx response goes here piece by piece as it arrives,
    // instead of into the result's body (max_response_bytes still bounds the total); other
    // responses (errors, redirects) are read whole as usual. Returning false stops the fetch:
    // done reports HTTP_STREAM_STOPPED. It must not cancel the fetch itself.
    std::function<bool(std::string_view piece)> on_body;
    // Keep the connection for the next fetch to the same origin (scheme, host, port) on this
    // loop once the response is complete and the server allows it: idle connections wait up
    // to 30 s, at most 16 per origin; a kept connection the server closed meanwhile is
    // replaced by a new one without the caller noticing. Off by default (http steps).
    bool keep_alive = false;
};

struct HttpFetchResult {
    bool ok = false;
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
    std::string body;
    std::string url;         // after redirects
    std::string error_code;  // EGRESS_DENIED, HTTP_REQUEST_FAILED, HTTP_RESPONSE_TOO_LARGE, HTTP_TIMEOUT
    std::string message;
};

class HttpClientCall {
public:
    virtual ~HttpClientCall() = default;
    virtual void cancel() = 0;  // nothing is reported after this
};

std::unique_ptr<HttpClientCall> http_fetch(uv_loop_t *loop, HttpFetch fetch, const EgressPolicy &policy,
                                           std::function<void(HttpFetchResult)> done);

// "http://host:port/path?q" → parts; false when it is not an absolute http(s) URL.
struct ParsedUrl {
    std::string scheme, host, path;
    int port = 0;
};
bool parse_url(const std::string &url, ParsedUrl &out);

}  // namespace flowgres::executor
