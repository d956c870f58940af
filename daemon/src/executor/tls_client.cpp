// OpenSSL client sessions over memory BIOs (the pattern of OpenSSL's own non-blocking
// examples): bytes from the socket go into `incoming_`, what OpenSSL wants sent collects in
// `outgoing_`, and SSL_ERROR_WANT_READ only means "wait for more bytes".
#include "executor/tls_client.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace flowgres::executor {

namespace {
std::string openssl_error(std::string_view fallback) {
    unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (!code) return std::string(fallback);
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    return text;
}

bool is_ip_literal(const std::string &host) {
    unsigned char address[16];
    return inet_pton(AF_INET, host.c_str(), address) == 1 || inet_pton(AF_INET6, host.c_str(), address) == 1;
}
}  // namespace

std::shared_ptr<const TlsClientContext> TlsClientContext::create(const std::string &extra_ca_file, std::string &error) {
    std::shared_ptr<TlsClientContext> context(new TlsClientContext());
    context->context_ = SSL_CTX_new(TLS_client_method());
    if (!context->context_) {
        error = openssl_error("cannot create a TLS context");
        return nullptr;
    }
    SSL_CTX_set_min_proto_version(context->context_, TLS1_2_VERSION);
    SSL_CTX_set_verify(context->context_, SSL_VERIFY_PEER, nullptr);
    // The system's store (Debian: /etc/ssl/certs); missing is not fatal, then only extra CAs count.
    SSL_CTX_set_default_verify_paths(context->context_);
    if (!extra_ca_file.empty() &&
        SSL_CTX_load_verify_locations(context->context_, extra_ca_file.c_str(), nullptr) != 1) {
        error = "http_ca_file " + extra_ca_file + ": " + openssl_error("cannot load the CA certificates");
        return nullptr;
    }
    return context;
}

TlsClientContext::~TlsClientContext() {
    if (context_) SSL_CTX_free(context_);
}

TlsSession::TlsSession(const TlsClientContext &context, const std::string &host) {
    ssl_ = SSL_new(context.get());
    incoming_ = BIO_new(BIO_s_mem());
    outgoing_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(incoming_, -1);    // empty means "more may come", not end of stream
    SSL_set_bio(ssl_, incoming_, outgoing_);  // the SSL owns both BIOs from here
    SSL_set_connect_state(ssl_);
    X509_VERIFY_PARAM *parameters = SSL_get0_param(ssl_);
    if (is_ip_literal(host)) {
        X509_VERIFY_PARAM_set1_ip_asc(parameters, host.c_str());
    } else {
        SSL_set_tlsext_host_name(ssl_, host.c_str());
        X509_VERIFY_PARAM_set_hostflags(parameters, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(parameters, host.c_str(), host.size());
    }
}

TlsSession::~TlsSession() {
    if (ssl_) SSL_free(ssl_);
}

TlsSession::Step TlsSession::handshake(std::string &error) {
    ERR_clear_error();
    int result = SSL_do_handshake(ssl_);
    if (result == 1) return Step::done;
    int reason = SSL_get_error(ssl_, result);
    if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) return Step::pending;
    long verified = SSL_get_verify_result(ssl_);
    if (verified != X509_V_OK)
        error = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verified);
    else
        error = openssl_error("the TLS handshake failed");
    return Step::failed;
}

void TlsSession::received(const char *data, size_t size) {
    BIO_write(incoming_, data, static_cast<int>(size));
}

bool TlsSession::write(std::string_view plaintext) {
    ERR_clear_error();
    return plaintext.empty() || SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size())) > 0;
}

bool TlsSession::read(std::string &out, bool &closed, std::string &error) {
    char buffer[16384];
    for (;;) {
        ERR_clear_error();
        int count = SSL_read(ssl_, buffer, sizeof(buffer));
        if (count > 0) {
            out.append(buffer, static_cast<size_t>(count));
            continue;
        }
        int reason = SSL_get_error(ssl_, count);
        if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) return true;
        if (reason == SSL_ERROR_ZERO_RETURN) {
            closed = true;
            return true;
        }
        error = openssl_error("TLS read failed");
        return false;
    }
}

std::string TlsSession::take_outgoing() {
    std::string out;
    char buffer[16384];
    int count;
    while ((count = BIO_read(outgoing_, buffer, sizeof(buffer))) > 0) out.append(buffer, static_cast<size_t>(count));
    return out;
}

}  // namespace flowgres::executor
