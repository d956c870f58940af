// Connections on libuv: read → parse → hand to the Handler → write responses in request order.
// Lifetime: the server owns each Connection through a shared_ptr until both of its uv handles
// have run their close callbacks; Responders hold weak_ptrs, so a late answer to a client that
// left finds nothing and is dropped.
#include "server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

namespace flowgres::http {

namespace {
constexpr size_t kReadBufferSize = 64 * 1024;
thread_local char read_buffer[kReadBufferSize];
}  // namespace

class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(HttpServer &server)
        : server_(server),
          parser_(server.limits_.parser, [this](const Request &r) { return server_.handler_.body_limit(r); }) {}

    void start(bool refuse) {
        uv_tcp_init(server_.loop_, &tcp_);
        uv_timer_init(server_.loop_, &timer_);
        tcp_.data = this;
        timer_.data = this;
        if (uv_accept(reinterpret_cast<uv_stream_t *>(&server_.listener_), reinterpret_cast<uv_stream_t *>(&tcp_)) !=
            0) {
            close();
            return;
        }
        uv_tcp_nodelay(&tcp_, 1);
        peer_ = peer_address();
        if (server_.tls_) tls_ = std::make_unique<TlsServerSession>(*server_.tls_, server_.certificates_);
        if (refuse) {
            // Past the connection limit: a clear answer, then close; nothing is read.
            queue_refusal(503, "SHUTTING_DOWN", "the server has too many open connections; retry later");
            return;
        }
        uv_read_start(reinterpret_cast<uv_stream_t *>(&tcp_), on_alloc, on_read);
        arm_idle_timer();
    }

    void complete(uint64_t sequence, std::string bytes) { append(sequence, std::move(bytes), true); }

    // Streamed responses: bytes are added to the request's slot as they come; they go out
    // while the slot is first in line, and the slot is done (the next answer may follow) at
    // the end of the stream.
    bool append(uint64_t sequence, std::string bytes, bool done) {
        if (closing_) return false;
        for (auto &slot : slots_) {
            if (slot.sequence == sequence && !slot.done) {
                slot.done = done;
                slot.bytes += bytes;
                flush();
                return !closing_;
            }
        }
        return false;
    }

    bool open() const { return !closing_ && !lingering_; }

    // Shutdown: idle connections close now; busy ones answer what they have, then close.
    void drain() {
        draining_ = true;
        if (slots_.empty() && !parser_.mid_message()) close();
    }

    bool keep_alive_allowed() const { return !draining_; }

    void close() {
        if (closing_) return;
        closing_ = true;
        slots_.clear();
        uv_timer_stop(&timer_);
        uv_read_stop(reinterpret_cast<uv_stream_t *>(&tcp_));
        pending_closes_ = 2;
        uv_close(reinterpret_cast<uv_handle_t *>(&tcp_), on_closed);
        uv_close(reinterpret_cast<uv_handle_t *>(&timer_), on_closed);
    }

private:
    struct Slot {
        uint64_t sequence;
        bool done = false;
        bool close_after = false;
        std::string bytes;
    };

    struct WriteRequest {
        uv_write_t request;
        std::string data;
    };

    std::string peer_address() {
        sockaddr_storage address{};
        int length = sizeof(address);
        if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr *>(&address), &length) != 0) return "";
        char text[INET6_ADDRSTRLEN] = "";
        if (address.ss_family == AF_INET)
            uv_ip4_name(reinterpret_cast<sockaddr_in *>(&address), text, sizeof(text));
        else if (address.ss_family == AF_INET6)
            uv_ip6_name(reinterpret_cast<sockaddr_in6 *>(&address), text, sizeof(text));
        return text;
    }

    static void on_alloc(uv_handle_t *, size_t, uv_buf_t *buffer) {
        *buffer = uv_buf_init(read_buffer, kReadBufferSize);
    }

    static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer) {
        auto *self = static_cast<Connection *>(stream->data);
        if (self->lingering_) {
            // Answered and half-closed: what the client still sends is read and dropped, so its
            // kernel sees no reset before it has read our answer.
            if (nread < 0) self->close();
            return;
        }
        if (nread > 0) {
            // Keep the connection alive while handlers may answer synchronously inside.
            auto keep = self->shared_from_this();
            if (!self->tls_) return self->consume(buffer->base, static_cast<size_t>(nread));
            // HTTPS: the handshake, then the requests as plaintext (all of it, every read: the
            // parser holds what waits, so nothing stays inside the TLS session).
            self->tls_->received(buffer->base, static_cast<size_t>(nread));
            if (!self->tls_waiting_) self->pump_tls();
        } else if (nread < 0) {
            // EOF or reset: the client is gone; in-flight answers are dropped.
            self->close();
        }
    }

    // The TLS session takes what was read: the handshake (which may wait while the name's
    // certificate is learned), then the requests as plaintext.
    void pump_tls() {
        std::string plaintext;
        TlsServerSession::State state = tls_->pump(plaintext);
        if (std::string out = tls_->take_outgoing(); !out.empty()) write_raw(std::move(out));
        if (state == TlsServerSession::State::closed) return close();
        if (state == TlsServerSession::State::waiting) {
            tls_waiting_ = true;
            server_.certificates_->load(tls_->name_wanted(), [weak = weak_from_this()] {
                auto self = weak.lock();
                if (!self || self->closing_) return;
                self->tls_waiting_ = false;
                self->pump_tls();
            });
            return;
        }
        if (!plaintext.empty() && !closing_) consume(plaintext.data(), plaintext.size());
    }

    void consume(const char *data, size_t size) {
        bool was_mid_message = parser_.mid_message();
        if (auto failure = parser_.feed(data, size)) {
            stop_reading();
            pending_failure_ = std::move(failure);  // answered after the requests before it
        }
        dispatch_ready();
        if (closing_) return;
        if (parser_.take_continue_request() && slots_.empty() && parser_.mid_message()) {
            write_bytes("HTTP/1.1 100 Continue\r\n\r\n");
        }
        // One read can hold many small pipelined requests: past max_pipelined they wait,
        // parsed, and nothing more is read until the connection's queue has room again.
        if (slots_.size() >= server_.limits_.max_pipelined || !parser_.ready().empty()) stop_reading();
        // Headers must arrive within header_timeout_ms; a body only has to keep arriving: each
        // read of it re-arms body_timeout_ms, so a large upload on a slow link is not cut off.
        if (parser_.mid_message() && parser_.in_body())
            arm_body_timer();
        else if (parser_.mid_message() && !was_mid_message)
            arm_request_timer();
        if (!parser_.mid_message() && slots_.empty()) arm_idle_timer();
        if (!slots_.empty() && !parser_.mid_message()) uv_timer_stop(&timer_);
        flush();
    }

    // Hands parsed requests to the handler while the connection has fewer than max_pipelined
    // unanswered; then, once all are handed over, the parse failure that followed them.
    void dispatch_ready() {
        if (dispatching_) return;  // a synchronous answer's flush inside the loop below
        dispatching_ = true;
        auto &ready = parser_.ready();
        while (!ready.empty() && !closing_ && !no_more_requests_ && slots_.size() < server_.limits_.max_pipelined) {
            Request request = std::move(ready.front());
            ready.pop_front();
            request.peer_address = peer_;
            request.secure = tls_ != nullptr;
            uint64_t sequence = next_sequence_++;
            bool close_after = !request.keep_alive || draining_;
            slots_.push_back(Slot{sequence, false, close_after, {}});
            bool head = request.method == "HEAD";
            if (close_after) {
                stop_reading();
                no_more_requests_ = true;
            }
            server_.handler_.handle(std::move(request), Responder(weak_from_this(), sequence, head, !close_after));
            if (close_after) {
                ready.clear();  // nothing after a "Connection: close" request is answered
                break;
            }
        }
        dispatching_ = false;
        if (!closing_ && ready.empty() && pending_failure_ && !no_more_requests_) {
            ParseFailure failure = std::move(*pending_failure_);
            pending_failure_.reset();
            queue_refusal(failure.status, failure.code, failure.message);
        }
    }

    void queue_refusal(int status, const std::string &code, const std::string &message) {
        no_more_requests_ = true;
        Response response = server_.handler_.refusal(status, code, message);
        slots_.push_back(Slot{next_sequence_++, true, true, serialize(response, false, false)});
        flush();
    }

    void stop_reading() {
        if (reading_) uv_read_stop(reinterpret_cast<uv_stream_t *>(&tcp_));
        reading_ = false;
    }

    void arm_request_timer() { uv_timer_start(&timer_, on_request_timeout, server_.limits_.header_timeout_ms, 0); }
    void arm_body_timer() { uv_timer_start(&timer_, on_request_timeout, server_.limits_.body_timeout_ms, 0); }
    void arm_idle_timer() { uv_timer_start(&timer_, on_idle_timeout, server_.limits_.idle_timeout_ms, 0); }

    static void on_request_timeout(uv_timer_t *timer) {
        auto *self = static_cast<Connection *>(timer->data);
        // A slow client (slowloris) gets a 408 once its request is overdue, then the close.
        if (self->slots_.empty()) {
            self->stop_reading();
            self->queue_refusal(408, "BAD_REQUEST", "the request was not received in time");
        } else {
            self->close();
        }
    }

    static void on_idle_timeout(uv_timer_t *timer) { static_cast<Connection *>(timer->data)->close(); }

    void flush() {
        if (closing_) return;
        std::string out;
        bool close_after = false;
        while (!slots_.empty()) {
            Slot &slot = slots_.front();
            out += slot.bytes;
            slot.bytes.clear();
            if (!slot.done) break;  // a stream still open: what it has so far goes out
            close_after = slot.close_after;
            slots_.pop_front();
            if (close_after) {
                slots_.clear();
                break;
            }
        }
        if (!out.empty()) write_bytes(std::move(out));
        if (close_after) {
            close_after_write_ = true;
            stop_reading();
        }
        if (close_after_write_ && writes_in_flight_ == 0) {
            linger_close();
            return;
        }
        if (draining_ && slots_.empty() && !parser_.mid_message() && writes_in_flight_ == 0) {
            close();
            return;
        }
        if (!dispatching_ && !closing_ && !parser_.ready().empty() && slots_.size() < server_.limits_.max_pipelined / 2) {
            dispatch_ready();  // requests read earlier first; their answers flush again
            if (closing_) return;
        }
        if (!reading_ && !close_after_write_ && !no_more_requests_ && !pending_failure_ && parser_.ready().empty() &&
            slots_.size() < server_.limits_.max_pipelined / 2) {
            reading_ = true;
            uv_read_start(reinterpret_cast<uv_stream_t *>(&tcp_), on_alloc, on_read);
        }
        if (slots_.empty() && !parser_.mid_message() && !closing_ && !lingering_) arm_idle_timer();
    }

    // An answer's bytes: encrypted first on an HTTPS connection.
    void write_bytes(std::string data) {
        if (tls_) {
            tls_->write(data);
            data = tls_->take_outgoing();
            if (data.empty()) return;  // queued until the handshake is done
        }
        write_raw(std::move(data));
    }

    void write_raw(std::string data) {
        if (closing_) return;
        uv_buf_t buffer = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
        // Bytes already queued go first: only write directly when nothing is waiting.
        int written =
            writes_in_flight_ > 0 ? UV_EAGAIN : uv_try_write(reinterpret_cast<uv_stream_t *>(&tcp_), &buffer, 1);
        if (written == static_cast<int>(data.size())) return;
        if (written < 0 && written != UV_EAGAIN) {
            close();
            return;
        }
        auto *request = new WriteRequest{};  // freed in on_written
        request->data = data.substr(written > 0 ? written : 0);
        request->request.data = this;
        uv_buf_t rest = uv_buf_init(request->data.data(), static_cast<unsigned>(request->data.size()));
        writes_in_flight_++;
        keep_for_write_ = shared_from_this();
        uv_write(&request->request, reinterpret_cast<uv_stream_t *>(&tcp_), &rest, 1, on_written);
    }

    static void on_written(uv_write_t *request, int status) {
        std::unique_ptr<WriteRequest> owned(reinterpret_cast<WriteRequest *>(request));
        auto *self = static_cast<Connection *>(request->data);
        auto keep = self->keep_for_write_;
        self->writes_in_flight_--;
        if (self->writes_in_flight_ == 0) self->keep_for_write_.reset();
        if (status < 0) {
            self->close();
            return;
        }
        if (self->writes_in_flight_ == 0 && self->close_after_write_)
            self->linger_close();
        else if (self->writes_in_flight_ == 0 && self->draining_ && self->slots_.empty())
            self->close();
    }

    // Half-close after the last answer, then wait briefly for the client's FIN (nginx's
    // lingering close): closing at once would reset a client still sending, and a reset can
    // destroy our answer in its receive buffer before it reads it.
    void linger_close() {
        if (lingering_ || closing_) return;
        lingering_ = true;
        if (tls_) {  // the peer is told first (close_notify), then the half-close
            tls_->shutdown();
            if (std::string out = tls_->take_outgoing(); !out.empty()) write_raw(std::move(out));
        }
        uv_timer_start(
            &timer_, [](uv_timer_t *timer) { static_cast<Connection *>(timer->data)->close(); }, 1000, 0);
        shutdown_request_.data = this;
        if (uv_shutdown(&shutdown_request_, reinterpret_cast<uv_stream_t *>(&tcp_), nullptr) != 0) {
            close();
            return;
        }
        if (!reading_) {
            reading_ = true;
            uv_read_start(reinterpret_cast<uv_stream_t *>(&tcp_), on_alloc, on_read);
        }
    }

    static void on_closed(uv_handle_t *handle) {
        auto *self = static_cast<Connection *>(handle->data);
        if (--self->pending_closes_ == 0) self->server_.forget(self);
    }

    HttpServer &server_;
    RequestParser parser_;
    uv_tcp_t tcp_{};
    uv_timer_t timer_{};
    std::string peer_;
    std::deque<Slot> slots_;
    uint64_t next_sequence_ = 0;
    bool reading_ = true;
    bool closing_ = false;
    bool draining_ = false;
    bool close_after_write_ = false;
    bool no_more_requests_ = false;
    bool lingering_ = false;
    bool dispatching_ = false;
    std::optional<ParseFailure> pending_failure_;
    uv_shutdown_t shutdown_request_{};
    int writes_in_flight_ = 0;
    int pending_closes_ = 0;
    std::shared_ptr<Connection> keep_for_write_;
    std::unique_ptr<TlsServerSession> tls_;  // HTTPS connections only
    bool tls_waiting_ = false;               // the handshake waits for its name's certificate
};

void Responder::send(const Response &response) const {
    auto connection = connection_.lock();
    if (!connection) return;
    connection->complete(sequence_,
                         serialize(response, keep_alive_ && connection->keep_alive_allowed(), head_request_));
}

bool Responder::begin_stream(const Response &head) const {
    auto connection = connection_.lock();
    if (!connection) return false;
    bool keep_alive = keep_alive_ && connection->keep_alive_allowed();
    // HEAD: the head alone, and the response is complete.
    if (head_request_)
        return connection->append(sequence_, serialize_stream_head(head, keep_alive) + std::string(kLastChunk), true);
    return connection->append(sequence_, serialize_stream_head(head, keep_alive), false);
}

bool Responder::send_chunk(std::string_view data) const {
    auto connection = connection_.lock();
    return connection && !data.empty() && connection->append(sequence_, serialize_chunk(data), false);
}

void Responder::end_stream() const {
    if (auto connection = connection_.lock()) connection->append(sequence_, std::string(kLastChunk), true);
}

bool Responder::connected() const {
    auto connection = connection_.lock();
    return connection && connection->open();
}

std::atomic<long> &HttpServer::global_open_connections() {
    static std::atomic<long> count{0};
    return count;
}

HttpServer::HttpServer(uv_loop_t *loop, ServerLimits limits, Handler &handler)
    : loop_(loop), limits_(limits), handler_(handler) {}

HttpServer::~HttpServer() = default;

void HttpServer::listen(int fd, std::shared_ptr<TlsServerContext> tls, CertificateSource *certificates) {
    tls_ = std::move(tls);
    certificates_ = certificates;
    uv_tcp_init(loop_, &listener_);
    listener_.data = this;
    uv_tcp_open(&listener_, fd);
    uv_listen(reinterpret_cast<uv_stream_t *>(&listener_), 1024, on_connection);
    listening_ = true;
}

void HttpServer::on_connection(uv_stream_t *listener, int status) {
    auto *server = static_cast<HttpServer *>(listener->data);
    if (status < 0 || server->draining_) return;
    auto connection = std::make_shared<Connection>(*server);
    server->owned_.insert(connection);
    server->connections_.insert(connection.get());
    global_open_connections()++;
    connection->start(server->connections_.size() > server->limits_.max_connections);
}

void HttpServer::forget(Connection *connection) {
    connections_.erase(connection);
    global_open_connections()--;
    for (auto it = owned_.begin(); it != owned_.end(); ++it) {
        if (it->get() == connection) {
            // Destroy after this callback returns: the uv handle callback is still on the stack.
            auto doomed = *it;
            owned_.erase(it);
            break;
        }
    }
    if (draining_ && connections_.empty() && drained_) {
        auto drained = std::move(drained_);
        drained_ = nullptr;
        drained();
    }
}

void HttpServer::begin_shutdown(std::function<void()> drained) {
    draining_ = true;
    drained_ = std::move(drained);
    if (listening_) {
        listening_ = false;
        uv_close(reinterpret_cast<uv_handle_t *>(&listener_), nullptr);
    }
    std::vector<Connection *> current(connections_.begin(), connections_.end());
    for (Connection *connection : current) connection->drain();
    if (connections_.empty() && drained_) {
        auto done = std::move(drained_);
        drained_ = nullptr;
        done();
    }
}

void HttpServer::close_all() {
    std::vector<Connection *> current(connections_.begin(), connections_.end());
    for (Connection *connection : current) connection->close();
}

int open_reuseport_listener(const std::string &host, int port, int backlog) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    // libuv 1.44 has no UV_TCP_REUSEPORT (TOOLCHAIN.md): set it before bind ourselves.
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0 || ::listen(fd, backlog) != 0) {
        int error = errno;
        ::close(fd);
        return -error;
    }
    return fd;
}

}  // namespace flowgres::http
