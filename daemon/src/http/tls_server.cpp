// The HTTPS listener's TLS (tls_server.hpp).
#include "http/tls_server.hpp"

#include <openssl/err.h>

namespace flowgres::http {
namespace {

std::string openssl_error(const std::string &what) {
    unsigned long code = ERR_get_error();
    char text[256] = "";
    if (code) ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    return what + (code ? std::string(": ") + text : std::string());
}

// TLS 1.2's suites: forward secrecy and AEAD only. TLS 1.3's are OpenSSL's defaults (all AEAD).
constexpr const char *kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

}  // namespace

std::shared_ptr<TlsServerContext> TlsServerContext::create(const std::string &certificate_file, const std::string &key_file,
                                                           std::string &error) {
    std::shared_ptr<TlsServerContext> made(new TlsServerContext());
    made->context_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX *context = made->context_;
    if (!context) {
        error = openssl_error("no TLS context");
        return nullptr;
    }
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(context, kTls12Ciphers);
    SSL_CTX_set_options(context, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    // Resumption: a session cache in this process and tickets (keys made at start, per process).
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(context, 20000);
    static const unsigned char kSessionContext[] = "flowgresd";
    SSL_CTX_set_session_id_context(context, kSessionContext, sizeof kSessionContext - 1);
    SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(context, certificate_file.c_str()) != 1) {
        error = openssl_error("tls_cert_file " + certificate_file + " does not load");
        return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(context, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        error = openssl_error("tls_key_file " + key_file + " does not load");
        return nullptr;
    }
    if (SSL_CTX_check_private_key(context) != 1) {
        error = openssl_error("tls_key_file does not match tls_cert_file");
        return nullptr;
    }
    return made;
}

TlsServerContext::~TlsServerContext() {
    if (context_) SSL_CTX_free(context_);
}

TlsServerSession::TlsServerSession(const TlsServerContext &context) {
    ssl_ = SSL_new(context.get());
    incoming_ = BIO_new(BIO_s_mem());
    outgoing_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(incoming_, -1);    // empty means "more may come"
    SSL_set_bio(ssl_, incoming_, outgoing_);  // the SSL owns both BIOs from here
    SSL_set_accept_state(ssl_);
}

TlsServerSession::~TlsServerSession() {
    if (ssl_) SSL_free(ssl_);
}

void TlsServerSession::received(const char *data, size_t size) { BIO_write(incoming_, data, static_cast<int>(size)); }

bool TlsServerSession::pump(std::string &plaintext) {
    if (!handshake_done_) {
        ERR_clear_error();
        int result = SSL_do_handshake(ssl_);
        if (result != 1) {
            int reason = SSL_get_error(ssl_, result);
            ERR_clear_error();
            return reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE;
        }
        handshake_done_ = true;
        if (!pending_.empty()) {
            std::string queued = std::move(pending_);
            pending_.clear();
            write(queued);
        }
    }
    char buffer[16384];
    for (;;) {
        ERR_clear_error();
        int count = SSL_read(ssl_, buffer, sizeof buffer);
        if (count > 0) {
            plaintext.append(buffer, static_cast<size_t>(count));
            continue;
        }
        int reason = SSL_get_error(ssl_, count);
        ERR_clear_error();
        return reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE;
    }
}

void TlsServerSession::write(std::string_view plaintext) {
    if (plaintext.empty()) return;
    if (!handshake_done_) {
        pending_.append(plaintext);
        return;
    }
    ERR_clear_error();
    SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size()));  // memory BIO: always whole
    ERR_clear_error();
}

void TlsServerSession::shutdown() {
    if (handshake_done_) SSL_shutdown(ssl_);
    ERR_clear_error();
}

std::string TlsServerSession::take_outgoing() {
    std::string out;
    char buffer[16384];
    int count;
    while ((count = BIO_read(outgoing_, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(count));
    return out;
}

}  // namespace flowgres::http
