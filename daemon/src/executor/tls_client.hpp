// TLS for https steps (OpenSSL): one client context per process, and a session per connection
// that encrypts and decrypts bytes the caller moves over its own libuv socket (memory BIOs), so
// TLS runs on the event loop like everything else. Peers are verified: the chain against the
// system's CA store (plus an optional PEM file of extra CAs, `http_ca_file`), and the name
// against the URL's host (a DNS name, with SNI, or an IP address). TLS 1.2 at least.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

namespace flowgres::executor {

class TlsClientContext {
public:
    // nullptr and `error` set when the extra CA file cannot be loaded.
    static std::shared_ptr<const TlsClientContext> create(const std::string &extra_ca_file, std::string &error);
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext &) = delete;
    TlsClientContext &operator=(const TlsClientContext &) = delete;
    SSL_CTX *get() const { return context_; }

private:
    TlsClientContext() = default;
    SSL_CTX *context_ = nullptr;
};

class TlsSession {
public:
    TlsSession(const TlsClientContext &context, const std::string &host);
    ~TlsSession();
    TlsSession(const TlsSession &) = delete;
    TlsSession &operator=(const TlsSession &) = delete;

    enum class Step { done, pending, failed };
    // Advances the handshake with what has been received; `error` says why it failed
    // (certificate verification included).
    Step handshake(std::string &error);
    // Bytes read from the socket.
    void received(const char *data, size_t size);
    // Encrypts application data (after the handshake).
    bool write(std::string_view plaintext);
    // Decrypts what is available into `out`. `closed`: the peer sent close_notify.
    bool read(std::string &out, bool &closed, std::string &error);
    // What must go to the socket now: handshake messages, encrypted data.
    std::string take_outgoing();

private:
    SSL *ssl_ = nullptr;
    BIO *incoming_ = nullptr;  // socket → OpenSSL
    BIO *outgoing_ = nullptr;  // OpenSSL → socket
};

}  // namespace flowgres::executor
