// The HTTP/1.1 server of one worker: accepts on its SO_REUSEPORT socket, owns its connections,
// answers pipelined requests in order, enforces the timeouts and the connection limit, and
// drains on shutdown. Knows nothing of routes or workspaces: requests go to a Handler.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "parser.hpp"
#include "request.hpp"
#include "tls_server.hpp"

namespace flowgres::http {

class Connection;

// Completes one request, exactly once, from any later callback on the same loop. If the
// client has gone away meanwhile, the response is dropped.
class Responder {
public:
    Responder(std::weak_ptr<Connection> connection, uint64_t sequence, bool head_request, bool keep_alive)
        : connection_(std::move(connection)),
          sequence_(sequence),
          head_request_(head_request),
          keep_alive_(keep_alive) {}
    void send(const Response &response) const;

    // A streamed response (Server-Sent Events): the head now, chunks as they come, then the
    // end; the connection stays usable for the requests after it. Instead of send(). Each
    // returns false once the client is gone (nothing more need be written).
    bool begin_stream(const Response &head) const;
    bool send_chunk(std::string_view data) const;
    void end_stream() const;
    // Whether the client is still connected and reading.
    bool connected() const;

private:
    std::weak_ptr<Connection> connection_;
    uint64_t sequence_;
    bool head_request_;
    bool keep_alive_;  // false: the client asked to close (or HTTP/1.0): say "Connection: close"
};

class Handler {
public:
    virtual ~Handler() = default;
    // The largest body the request's route accepts (checked before the body is read).
    virtual size_t body_limit(const Request &request) const = 0;
    virtual void handle(Request &&request, Responder responder) = 0;
    // The response for a request that never reached the router (parse failure, timeout,
    // connection limit): lets the application keep its envelope on every response.
    virtual Response refusal(int status, const std::string &code, const std::string &message) const = 0;
};

struct ServerLimits {
    ParserLimits parser;
    uint64_t header_timeout_ms = 10000;  // first byte of a request → the end of its headers
    uint64_t body_timeout_ms = 10000;    // the longest silence while a body arrives (progress re-arms it)
    uint64_t idle_timeout_ms = 60000;    // keep-alive connection with nothing in flight
    size_t max_connections = 10000;      // per worker; past it: 503 and close
    size_t max_pipelined = 64;           // unanswered requests per connection before reading pauses
};

class HttpServer {
public:
    HttpServer(uv_loop_t *loop, ServerLimits limits, Handler &handler);
    ~HttpServer();

    // Takes a bound, listening socket (SO_REUSEPORT, made by the caller). With `tls`, every
    // connection speaks HTTPS, names other than the platform's from `certificates` (SNI).
    void listen(int fd, std::shared_ptr<TlsServerContext> tls = nullptr, CertificateSource *certificates = nullptr);
    // Stop accepting, close idle connections, close the rest once their responses are out.
    // `drained` runs once no connection is left.
    void begin_shutdown(std::function<void()> drained);
    // Close every connection now (the shutdown deadline passed).
    void close_all();

    size_t open_connections() const { return connections_.size(); }
    static std::atomic<long> &global_open_connections();

private:
    friend class Connection;
    static void on_connection(uv_stream_t *listener, int status);
    void forget(Connection *connection);

    uv_loop_t *loop_;
    ServerLimits limits_;
    Handler &handler_;
    uv_tcp_t listener_{};
    bool listening_ = false;
    bool draining_ = false;
    std::function<void()> drained_;
    std::unordered_set<Connection *> connections_;
    std::unordered_set<std::shared_ptr<Connection>> owned_;
    std::shared_ptr<TlsServerContext> tls_;
    CertificateSource *certificates_ = nullptr;
};

// Binds a TCP socket on host:port with SO_REUSEPORT and listens; -errno on failure.
int open_reuseport_listener(const std::string &host, int port, int backlog);

}  // namespace flowgres::http
