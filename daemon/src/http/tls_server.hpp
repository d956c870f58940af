// TLS for the daemon's HTTPS listener (tls_port; README "Running flowgresd"): one server context
// per process (TLS 1.2 and 1.3 only, modern AEAD ciphers, server-side session resumption by
// cache and tickets) and a session per connection that decrypts what the socket read and
// encrypts what the connection writes, through memory BIOs, so TLS runs on the worker's loop.
// A name other than the platform's (SNI) is looked up in a CertificateSource during the
// ClientHello: from memory; when the source has not seen the name yet, the handshake waits
// while the source loads it (one database call), then goes on.
#pragma once

#include <openssl/ssl.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace flowgres::http {

// Certificates by SNI. lookup runs inside the handshake, on the worker's thread, from memory.
class CertificateSource {
public:
    enum class Found { platform, certificate, refused, unknown };
    virtual ~CertificateSource() = default;
    // `context` is set for Found::certificate, with a reference the caller frees (SSL_CTX_free).
    virtual Found lookup(const std::string &name, SSL_CTX **context) = 0;
    // Learns `name` (a database call), then calls `done` on the worker's loop.
    virtual void load(const std::string &name, std::function<void()> done) = 0;
};

class TlsServerContext {
public:
    // The platform's certificate (a PEM chain) and key; nullptr and `error` when they do not
    // load or do not match.
    static std::shared_ptr<TlsServerContext> create(const std::string &certificate_file, const std::string &key_file,
                                                    std::string &error);
    // A custom domain's: its chain and key as PEM text.
    static std::shared_ptr<TlsServerContext> from_pem(const std::string &chain, const std::string &key, std::string &error);
    ~TlsServerContext();
    TlsServerContext(const TlsServerContext &) = delete;
    TlsServerContext &operator=(const TlsServerContext &) = delete;

    SSL_CTX *get() const { return context_; }

private:
    TlsServerContext() = default;
    static std::shared_ptr<TlsServerContext> configured(std::string &error);
    SSL_CTX *context_ = nullptr;
};

class TlsServerSession {
public:
    // `source` (may be null: the platform's certificate for every name) must outlive the session.
    TlsServerSession(const TlsServerContext &context, CertificateSource *source);
    ~TlsServerSession();
    TlsServerSession(const TlsServerSession &) = delete;
    TlsServerSession &operator=(const TlsServerSession &) = delete;

    // Bytes the socket read.
    void received(const char *data, size_t size);
    // Advances the handshake, then decrypts what is available into `plaintext`: open, closed
    // (a failed or refused handshake, a broken record, the peer's close_notify: close the
    // connection), or waiting for the source to learn name_wanted() (pump again once it has).
    enum class State { open, closed, waiting };
    State pump(std::string &plaintext);
    const std::string &name_wanted() const { return name_wanted_; }
    // Whether the handshake was refused for its name (not a broken one).
    bool refused_name() const { return refused_name_; }
    bool handshake_done() const { return handshake_done_; }
    // Encrypts application data (queued until the handshake is done).
    void write(std::string_view plaintext);
    // The peer is told the connection ends (close_notify).
    void shutdown();
    // What must go to the socket now.
    std::string take_outgoing();

    // The contexts' ClientHello callback: the name's certificate, a refusal, or a wait.
    static int on_client_hello(SSL *ssl, int *alert, void *argument);

private:
    CertificateSource *source_;
    std::string name_wanted_;
    bool refused_name_ = false;
    SSL *ssl_ = nullptr;
    BIO *incoming_ = nullptr;
    BIO *outgoing_ = nullptr;
    bool handshake_done_ = false;
    std::string pending_;  // written before the handshake finished
};

}  // namespace flowgres::http
