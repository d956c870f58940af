// The HTTPS listener's TLS (tls_server.hpp).
#include "http/tls_server.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <memory>

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

std::shared_ptr<TlsServerContext> TlsServerContext::configured(std::string &error) {
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
    SSL_CTX_set_client_hello_cb(context, TlsServerSession::on_client_hello, nullptr);
    return made;
}

std::shared_ptr<TlsServerContext> TlsServerContext::create(const std::string &certificate_file, const std::string &key_file,
                                                           std::string &error) {
    std::shared_ptr<TlsServerContext> made = configured(error);
    if (!made) return nullptr;
    if (SSL_CTX_use_certificate_chain_file(made->context_, certificate_file.c_str()) != 1) {
        error = openssl_error("tls_cert_file " + certificate_file + " does not load");
        return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(made->context_, key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(made->context_) != 1) {
        error = openssl_error("tls_key_file " + key_file + " does not load or does not match tls_cert_file");
        return nullptr;
    }
    return made;
}

std::shared_ptr<TlsServerContext> TlsServerContext::from_pem(const std::string &chain, const std::string &key,
                                                             std::string &error) {
    std::shared_ptr<TlsServerContext> made = configured(error);
    if (!made) return nullptr;
    std::unique_ptr<BIO, decltype(&BIO_free)> chain_bio(BIO_new_mem_buf(chain.data(), static_cast<int>(chain.size())),
                                                        BIO_free);
    X509 *leaf = PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr);
    if (!leaf || SSL_CTX_use_certificate(made->context_, leaf) != 1) {
        X509_free(leaf);
        error = openssl_error("the certificate does not load");
        return nullptr;
    }
    X509_free(leaf);
    while (X509 *issuer = PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr))
        if (SSL_CTX_add_extra_chain_cert(made->context_, issuer) != 1) X509_free(issuer);  // the context owns it
    ERR_clear_error();  // the end of the chain reads as an error
    std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new_mem_buf(key.data(), static_cast<int>(key.size())), BIO_free);
    EVP_PKEY *private_key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
    bool ok = private_key && SSL_CTX_use_PrivateKey(made->context_, private_key) == 1 &&
              SSL_CTX_check_private_key(made->context_) == 1;
    EVP_PKEY_free(private_key);
    if (!ok) {
        error = openssl_error("the key does not load or does not match the certificate");
        return nullptr;
    }
    return made;
}

TlsServerContext::~TlsServerContext() {
    if (context_) SSL_CTX_free(context_);
}

TlsServerSession::TlsServerSession(const TlsServerContext &context, CertificateSource *source) : source_(source) {
    ssl_ = SSL_new(context.get());
    SSL_set_app_data(ssl_, this);
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

namespace {

// The SNI name of a ClientHello, lowercased; "" when it names none (or nothing a name can be).
std::string server_name_of(SSL *ssl) {
    const unsigned char *data = nullptr;
    size_t length = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &data, &length) != 1 || length < 5) return "";
    // ServerNameList: length (2), then entries: type (1; 0 = host_name), length (2), name.
    size_t list = (static_cast<size_t>(data[0]) << 8) | data[1];
    if (list + 2 != length || data[2] != 0) return "";
    size_t name_length = (static_cast<size_t>(data[3]) << 8) | data[4];
    if (name_length == 0 || name_length > 253 || 5 + name_length > length) return "";
    std::string name(reinterpret_cast<const char *>(data + 5), name_length);
    for (char &c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return "";
    }
    return name;
}

}  // namespace

int TlsServerSession::on_client_hello(SSL *ssl, int *alert, void *) {
    auto *session = static_cast<TlsServerSession *>(SSL_get_app_data(ssl));
    if (!session || !session->source_) return SSL_CLIENT_HELLO_SUCCESS;
    std::string name = server_name_of(ssl);
    if (name.empty()) return SSL_CLIENT_HELLO_SUCCESS;  // no name: the platform's certificate
    SSL_CTX *context = nullptr;
    switch (session->source_->lookup(name, &context)) {
        case CertificateSource::Found::platform:
            return SSL_CLIENT_HELLO_SUCCESS;
        case CertificateSource::Found::certificate:
            SSL_set_SSL_CTX(ssl, context);  // takes a reference of its own
            SSL_CTX_free(context);
            return SSL_CLIENT_HELLO_SUCCESS;
        case CertificateSource::Found::refused:
            session->refused_name_ = true;
            *alert = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_CLIENT_HELLO_ERROR;
        case CertificateSource::Found::unknown:
            session->name_wanted_ = name;
            return SSL_CLIENT_HELLO_RETRY;
    }
    return SSL_CLIENT_HELLO_ERROR;
}

TlsServerSession::State TlsServerSession::pump(std::string &plaintext) {
    if (!handshake_done_) {
        ERR_clear_error();
        name_wanted_.clear();
        int result = SSL_do_handshake(ssl_);
        if (result != 1) {
            int reason = SSL_get_error(ssl_, result);
            ERR_clear_error();
            if (reason == SSL_ERROR_WANT_CLIENT_HELLO_CB) return State::waiting;
            return reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE ? State::open : State::closed;
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
        return reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE ? State::open : State::closed;
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
