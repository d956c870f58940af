// TLS for the daemon's HTTPS listener (tls_port; README "Running flowgresd"): one server context
// per process (TLS 1.2 and 1.3 only, modern AEAD ciphers, server-side session resumption by
// cache and tickets) and a session per connection that decrypts what the socket read and
// encrypts what the connection writes, through memory BIOs, so TLS runs on the worker's loop.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

namespace flowgres::http {

class TlsServerContext {
public:
    // The platform's certificate (a PEM chain) and key; nullptr and `error` when they do not
    // load or do not match.
    static std::shared_ptr<TlsServerContext> create(const std::string &certificate_file, const std::string &key_file,
                                                    std::string &error);
    ~TlsServerContext();
    TlsServerContext(const TlsServerContext &) = delete;
    TlsServerContext &operator=(const TlsServerContext &) = delete;

    SSL_CTX *get() const { return context_; }

private:
    TlsServerContext() = default;
    SSL_CTX *context_ = nullptr;
};

class TlsServerSession {
public:
    explicit TlsServerSession(const TlsServerContext &context);
    ~TlsServerSession();
    TlsServerSession(const TlsServerSession &) = delete;
    TlsServerSession &operator=(const TlsServerSession &) = delete;

    // Bytes the socket read.
    void received(const char *data, size_t size);
    // Advances the handshake, then decrypts what is available into `plaintext`. False when the
    // connection must close (a failed handshake, a broken record, the peer's close_notify).
    bool pump(std::string &plaintext);
    bool handshake_done() const { return handshake_done_; }
    // Encrypts application data (queued until the handshake is done).
    void write(std::string_view plaintext);
    // The peer is told the connection ends (close_notify).
    void shutdown();
    // What must go to the socket now.
    std::string take_outgoing();

private:
    SSL *ssl_ = nullptr;
    BIO *incoming_ = nullptr;
    BIO *outgoing_ = nullptr;
    bool handshake_done_ = false;
    std::string pending_;  // written before the handshake finished
};

}  // namespace flowgres::http
