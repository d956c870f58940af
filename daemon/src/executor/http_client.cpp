// One fetch: resolve → check egress → connect → write → parse → (redirect → …) → done.
// All state lives in a heap object owned by its own handles' lifetimes: cancel() closes the
// handles and the last close frees it, so no callback ever touches freed memory.
// Keep-alive (HttpFetch::keep_alive): a finished exchange's state, with its open socket (and
// TLS session), parks in its loop's pool instead of closing; the pool owns it from then on
// (its first owner is detached), and the next fetch to the same origin adopts it. Parked
// sockets are unreferenced, so they never keep a loop alive, and anything they receive while
// parked (the server closing, stray bytes) retires them.
#include "executor/http_client.hpp"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>

#include <cctype>
#include <cstring>
#include <map>
#include <vector>

namespace flowgres::executor {

bool parse_url(const std::string &url, ParsedUrl &out) {
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return false;
    out.scheme = url.substr(0, scheme_end);
    for (char &c : out.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (out.scheme != "http" && out.scheme != "https") return false;
    size_t host_start = scheme_end + 3;
    size_t path_start = url.find_first_of("/?#", host_start);
    std::string authority =
        url.substr(host_start, path_start == std::string::npos ? std::string::npos : path_start - host_start);
    if (authority.empty() || authority.find('@') != std::string::npos) return false;  // no userinfo tricks
    out.port = out.scheme == "https" ? 443 : 80;
    if (authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string::npos) return false;
        out.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return false;
            out.port = std::atoi(authority.c_str() + close + 2);
        }
    } else {
        size_t colon = authority.rfind(':');
        out.host = authority.substr(0, colon);
        if (colon != std::string::npos) out.port = std::atoi(authority.c_str() + colon + 1);
    }
    if (out.host.empty() || out.port <= 0 || out.port > 65535) return false;
    out.path = path_start == std::string::npos ? "/" : url.substr(path_start);
    if (out.path[0] == '?') out.path = "/" + out.path;
    if (size_t hash = out.path.find('#'); hash != std::string::npos) out.path.erase(hash);
    for (char c : out.path)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) return false;  // no CR/LF/space smuggling
    return true;
}

namespace {

class Fetch : public HttpClientCall {
public:
    struct State {
        uv_loop_t *loop;
        HttpFetch request;
        const EgressPolicy *policy;
        std::function<void(HttpFetchResult)> done;
        ParsedUrl url;
        std::string current_url;
        int redirects = 0;
        uv_getaddrinfo_t resolver{};
        uv_tcp_t tcp{};
        uv_connect_t connect{};
        uv_timer_t timer{};  // the current phase's timeout (connect, first byte, idle)
        bool timer_open = false;
        bool tcp_closing = false;
        const char *phase = "";
        size_t header_bytes = 0;
        std::unique_ptr<TlsSession> tls;  // https: the session over tcp
        bool handshaking = false;
        std::string outgoing;  // the request, sent once connected (and, with TLS, shaken hands)
        bool tcp_open = false;
        bool resolving = false;
        bool finished = false;
        llhttp_t parser{};
        llhttp_settings_t settings{};
        HttpFetchResult result;
        std::string header_field;
        bool in_value = false;
        bool complete = false;
        size_t streamed_bytes = 0;  // body bytes handed to request.on_body
        bool released = false;    // no handle or request can call back any more
        bool owner_gone = false;  // the Fetch (the node's task) no longer points here
        Fetch *owner = nullptr;   // while one does
        bool parked = false;      // idle in its loop's pool
        bool reused = false;      // this exchange runs on a parked connection
        bool received = false;    // a byte of this exchange's response arrived
        bool reusable = false;    // the response allows another request on its connection
        std::string pool_key;
        char buffer[65536];
    };

    explicit Fetch(State *state) : state_(state) { state->owner = this; }
    ~Fetch() override { cancel(); }
    void cancel() override {
        if (!state_) return;
        State *state = state_;
        state_ = nullptr;
        state->owner = nullptr;
        state->done = nullptr;
        finish_state(state, nullptr);
        state->owner_gone = true;
        if (state->released) delete state;
    }

    // ---- keep-alive: each loop's parked connections, by origin ----
    // Enough for the calls a busy loop has in flight to one provider at once (a model call
    // lasts seconds): past it, each call beyond opens and closes a connection of its own,
    // which costs the provider an accept and both sides a handshake. bench/llm.sh at 1,000
    // connections: 16 kept 885 req/s, 64 kept 1,045, 256 kept 1,150–1,375 but measured a few
    // percent lower at 64 connections (within this machine's noise, not understood). Idle
    // ones go after kParkedMilliseconds.
    static constexpr size_t kMaxParkedPerOrigin = 64;
    static constexpr uint64_t kParkedMilliseconds = 30000;

    static std::map<std::string, std::vector<State *>> &pool() {
        thread_local std::map<std::string, std::vector<State *>> parked;  // one loop per thread
        return parked;
    }

    // The origin, and what a connection was made under (its loop, TLS context, egress policy).
    static std::string pool_key(const uv_loop_t *loop, const ParsedUrl &url, const TlsClientContext *tls,
                                const EgressPolicy *policy) {
        char pointers[64];
        std::snprintf(pointers, sizeof(pointers), "%p|%p|%p", static_cast<const void *>(loop),
                      static_cast<const void *>(tls), static_cast<const void *>(policy));
        return url.scheme + "://" + url.host + ":" + std::to_string(url.port) + "|" + pointers;
    }

    // A parked connection for `fetch`'s origin, taken out of the pool; nullptr when none.
    static State *adopt(uv_loop_t *loop, const HttpFetch &fetch, const EgressPolicy &policy) {
        ParsedUrl url;
        if (!parse_url(fetch.url, url)) return nullptr;
        auto found = pool().find(pool_key(loop, url, fetch.tls.get(), &policy));
        if (found == pool().end() || found->second.empty()) return nullptr;
        State *state = found->second.back();
        found->second.pop_back();
        state->parked = false;
        uv_ref(reinterpret_cast<uv_handle_t *>(&state->tcp));
        uv_ref(reinterpret_cast<uv_handle_t *>(&state->timer));
        uv_timer_stop(&state->timer);
        return state;
    }

    static void unpark(State *state) {
        auto found = pool().find(state->pool_key);
        if (found != pool().end()) std::erase(found->second, state);
        state->parked = false;
    }

    // Closes a parked connection: it goes when its handles have closed (the pool owns it).
    static void retire(State *state) {
        unpark(state);
        close_timer(state);
        close_tcp(state, nullptr);
    }

    // The exchange is over and the connection may serve another: report, then park.
    static bool park(State *state) {
        if (!state->request.keep_alive || !state->tcp_open || state->handshaking || !state->reusable ||
            state->finished)
            return false;
        state->pool_key = pool_key(state->loop, state->url, state->request.tls.get(), state->policy);
        auto &parked = pool()[state->pool_key];
        if (parked.size() >= kMaxParkedPerOrigin) return false;
        // The first owner lets go: the pool owns the state from here.
        if (state->owner) state->owner->state_ = nullptr;
        state->owner = nullptr;
        state->owner_gone = true;
        state->finished = true;
        state->parked = true;
        parked.push_back(state);
        uv_unref(reinterpret_cast<uv_handle_t *>(&state->tcp));
        uv_unref(reinterpret_cast<uv_handle_t *>(&state->timer));
        uv_timer_start(&state->timer, [](uv_timer_t *timer) { retire(static_cast<State *>(timer->data)); },
                       kParkedMilliseconds, 0);
        return true;
    }

    // What one exchange (request and response) gathers, made empty for the next.
    static void reset_exchange(State *state) {
        state->result = HttpFetchResult{};
        state->complete = false;
        state->reusable = false;
        state->received = false;
        state->streamed_bytes = 0;
        state->header_bytes = 0;
        state->header_field.clear();
        state->in_value = false;
    }

    static void start(State *state) {
        reset_exchange(state);
        arm(state, state->request.connect_timeout_ms, "connect");
        if (!parse_url(state->current_url, state->url))
            return fail(state, "HTTP_REQUEST_FAILED", "not an absolute http URL: " + state->current_url);
        if (state->url.scheme == "https" && !state->request.tls)
            return fail(state, "HTTP_REQUEST_FAILED", "https is not available to this run");
        // An address literal needs no DNS; anything else resolves in libuv's thread pool.
        sockaddr_storage literal{};
        auto *v4 = reinterpret_cast<sockaddr_in *>(&literal);
        auto *v6 = reinterpret_cast<sockaddr_in6 *>(&literal);
        if (inet_pton(AF_INET, state->url.host.c_str(), &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(static_cast<uint16_t>(state->url.port));
            return connect_to(state, reinterpret_cast<sockaddr *>(&literal));
        }
        if (inet_pton(AF_INET6, state->url.host.c_str(), &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(static_cast<uint16_t>(state->url.port));
            return connect_to(state, reinterpret_cast<sockaddr *>(&literal));
        }
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        state->resolver.data = state;
        state->resolving = true;
        int error = uv_getaddrinfo(state->loop, &state->resolver, on_resolved, state->url.host.c_str(),
                                   std::to_string(state->url.port).c_str(), &hints);
        if (error) {
            state->resolving = false;
            fail(state, "HTTP_REQUEST_FAILED",
                 std::string("cannot resolve ") + state->url.host + ": " + uv_strerror(error));
        }
    }

    // Starts (or restarts) the phase's timeout; a phase with no limit stops the timer.
    static void arm(State *state, uint64_t timeout_ms, const char *phase) {
        if (!state->timer_open) return;
        state->phase = phase;
        if (timeout_ms == 0) {
            uv_timer_stop(&state->timer);
            return;
        }
        uv_timer_start(&state->timer, on_timeout, timeout_ms, 0);
    }

    // The steps of a fetch (static: each works on its State).
    static void on_timeout(uv_timer_t *timer) {
        auto *state = static_cast<State *>(timer->data);
        if (state->finished) return;
        std::string phase = state->phase;
        uint64_t limit = phase == "connect"      ? state->request.connect_timeout_ms
                         : phase == "first_byte" ? state->request.first_byte_timeout_ms
                                                 : state->request.idle_timeout_ms;
        std::string what = phase == "connect"      ? "no connection to " + state->url.host
                           : phase == "first_byte" ? state->url.host + " sent no response"
                                                   : state->url.host + " went silent";
        fail(state, "HTTP_TIMEOUT", what + " within " + std::to_string(limit) + " ms (" + phase + " timeout)");
    }

    static void on_resolved(uv_getaddrinfo_t *request, int status, addrinfo *addresses) {
        auto *state = static_cast<State *>(request->data);
        state->resolving = false;
        if (state->finished) {  // cancelled while resolving: the last reference was this request
            uv_freeaddrinfo(addresses);
            release(state);
            return;
        }
        if (status < 0 || !addresses) {
            uv_freeaddrinfo(addresses);
            return fail(state, "HTTP_REQUEST_FAILED", "cannot resolve " + state->url.host + ": " + uv_strerror(status));
        }
        // Every address the name has must be allowed: a name that also points inside is refused.
        for (addrinfo *address = addresses; address; address = address->ai_next) {
            if (!state->policy->allowed(address->ai_addr)) {
                std::string kind = EgressPolicy::special_kind(address->ai_addr);
                uv_freeaddrinfo(addresses);
                return fail(state, "EGRESS_DENIED", state->url.host + " resolves to a " + kind + " address");
            }
        }
        sockaddr_storage chosen{};
        std::memcpy(&chosen, addresses->ai_addr, addresses->ai_addrlen);
        uv_freeaddrinfo(addresses);
        connect_to(state, reinterpret_cast<sockaddr *>(&chosen));
    }

    static void connect_to(State *state, const sockaddr *address) {
        if (!state->policy->allowed(address))
            return fail(state, "EGRESS_DENIED",
                        state->url.host + " is a " + EgressPolicy::special_kind(address) + " address");
        uv_tcp_init(state->loop, &state->tcp);
        state->tcp.data = state;
        state->tcp_open = true;
        state->connect.data = state;
        int error = uv_tcp_connect(&state->connect, &state->tcp, address, on_connected);
        if (error) fail(state, "HTTP_REQUEST_FAILED", std::string("cannot connect: ") + uv_strerror(error));
    }

    static void on_connected(uv_connect_t *request, int status) {
        auto *state = static_cast<State *>(request->data);
        if (state->finished) return;
        if (status < 0)
            return fail(state, "HTTP_REQUEST_FAILED",
                        "cannot connect to " + state->url.host + ": " + uv_strerror(status));
        exchange(state, true);
    }

    // A parked connection adopted for a new fetch: the exchange starts at once.
    static void resume(State *state) {
        reset_exchange(state);
        exchange(state, false);
    }

    // Sends the request and reads the response: on a fresh connection (the TLS handshake
    // first, then reading starts) or on an adopted one (its session and reading carry on).
    static void exchange(State *state, bool fresh) {
        arm(state, state->request.first_byte_timeout_ms, "first_byte");
        const HttpFetch &fetch = state->request;
        std::string host =
            state->url.host.find(':') != std::string::npos ? "[" + state->url.host + "]" : state->url.host;
        if (state->url.port != (state->url.scheme == "https" ? 443 : 80)) host += ":" + std::to_string(state->url.port);
        state->outgoing = fetch.method + " " + state->url.path + " HTTP/1.1\r\nHost: " + host +
                          (fetch.keep_alive ? "\r\n" : "\r\nConnection: close\r\n") +
                          "User-Agent: flowgresd\r\nAccept-Encoding: identity\r\n";
        for (const auto &[name, value] : fetch.headers) state->outgoing += name + ": " + value + "\r\n";
        if (!fetch.body.empty() || fetch.method == "POST" || fetch.method == "PUT" || fetch.method == "PATCH")
            state->outgoing += "Content-Length: " + std::to_string(fetch.body.size()) + "\r\n";
        state->outgoing += "\r\n" + fetch.body;
        if (!fresh) {
            if (state->tls) {
                state->tls->write(state->outgoing);
                send(state, state->tls->take_outgoing());
            } else {
                send(state, std::move(state->outgoing));
            }
        } else if (state->url.scheme == "https") {
            // The request waits for the handshake; the client speaks first.
            state->tls = std::make_unique<TlsSession>(*fetch.tls, state->url.host);
            state->handshaking = true;
            if (!advance_handshake(state)) return;
        } else {
            send(state, std::move(state->outgoing));
        }
        llhttp_settings_init(&state->settings);
        state->settings.on_status = [](llhttp_t *parser, const char *, size_t length) {
            return count_header_bytes(static_cast<State *>(parser->data), length) ? 0 : -1;
        };
        state->settings.on_header_field = [](llhttp_t *parser, const char *at, size_t length) {
            auto *state = static_cast<State *>(parser->data);
            if (!count_header_bytes(state, length)) return -1;
            if (state->in_value || state->result.headers.empty()) {
                if (state->result.headers.size() >= state->request.max_headers) {
                    state->phase = "headers";
                    return -1;
                }
                state->result.headers.emplace_back();
            }
            state->in_value = false;
            state->result.headers.back().first.append(at, length);
            return 0;
        };
        state->settings.on_header_value = [](llhttp_t *parser, const char *at, size_t length) {
            auto *state = static_cast<State *>(parser->data);
            if (!count_header_bytes(state, length)) return -1;
            state->in_value = true;
            state->result.headers.back().second.append(at, length);
            return 0;
        };
        state->settings.on_body = [](llhttp_t *parser, const char *at, size_t length) {
            auto *state = static_cast<State *>(parser->data);
            if (state->streamed_bytes + state->result.body.size() + length > state->request.max_response_bytes)
                return -1;
            if (state->request.on_body && parser->status_code >= 200 && parser->status_code < 300) {
                state->streamed_bytes += length;
                if (state->request.on_body(std::string_view(at, length))) return 0;
                state->phase = "stopped";
                return -1;
            }
            state->result.body.append(at, length);
            return 0;
        };
        state->settings.on_message_complete = [](llhttp_t *parser) {
            auto *state = static_cast<State *>(parser->data);
            state->complete = true;
            // Asked now: once the callback returns, the parser forgets the message's framing.
            state->reusable = llhttp_should_keep_alive(parser) != 0;
            return 0;
        };
        llhttp_init(&state->parser, HTTP_RESPONSE, &state->settings);
        state->parser.data = state;
        if (!fresh) return;  // reading goes on from before
        uv_read_start(
            reinterpret_cast<uv_stream_t *>(&state->tcp),
            [](uv_handle_t *handle, size_t, uv_buf_t *buffer) {
                auto *state = static_cast<State *>(handle->data);
                *buffer = uv_buf_init(state->buffer, sizeof(state->buffer));
            },
            on_read);
    }

    static void drop_credentials(std::vector<std::pair<std::string, std::string>> &headers) {
        std::erase_if(headers, [](const auto &header) {
            std::string name = header.first;
            for (char &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return name == "authorization" || name == "proxy-authorization" || name == "cookie";
        });
    }

    static bool count_header_bytes(State *state, size_t length) {
        state->header_bytes += length;
        if (state->header_bytes <= state->request.max_header_bytes) return true;
        state->phase = "headers";
        return false;
    }

    // Queues bytes on the socket; each write owns its bytes until libuv is done with them.
    static void send(State *state, std::string bytes) {
        if (bytes.empty() || !state->tcp_open) return;
        struct Write {
            uv_write_t request;
            std::string bytes;
        };
        auto *write = new Write{{}, std::move(bytes)};
        write->request.data = state;
        uv_buf_t buffer = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
        uv_write(&write->request, reinterpret_cast<uv_stream_t *>(&state->tcp), &buffer, 1,
                 [](uv_write_t *request, int status) {
                     auto *state = static_cast<State *>(request->data);
                     delete reinterpret_cast<Write *>(request);
                     if (state->finished || status >= 0) return;
                     if (retry_fresh(state)) return;
                     fail(state, "HTTP_REQUEST_FAILED", std::string("cannot send: ") + uv_strerror(status));
                 });
    }

    // Steps the TLS handshake; once done, the request goes out encrypted. False when it failed.
    static bool advance_handshake(State *state) {
        std::string error;
        TlsSession::Step step = state->tls->handshake(error);
        send(state, state->tls->take_outgoing());
        if (step == TlsSession::Step::failed) {
            fail(state, "HTTP_REQUEST_FAILED", "TLS with " + state->url.host + " failed: " + error);
            return false;
        }
        if (step == TlsSession::Step::done) {
            state->handshaking = false;
            state->tls->write(state->outgoing);
            send(state, state->tls->take_outgoing());
        }
        return true;
    }

    // Response bytes (decrypted) into the parser; false when the fetch has failed.
    static bool feed(State *state, const char *data, size_t size) {
        if (size == 0 || state->complete) return true;
        llhttp_errno_t error = llhttp_execute(&state->parser, data, size);
        if (error == HPE_OK || state->complete) return true;
        if (std::string_view(state->phase) == "stopped")
            fail(state, "HTTP_STREAM_STOPPED", "the reader stopped the response");
        else if (std::string_view(state->phase) == "headers")
            fail(state, "HTTP_RESPONSE_TOO_LARGE",
                 "the response headers are larger than " + std::to_string(state->request.max_header_bytes) +
                     " bytes or more than " + std::to_string(state->request.max_headers) + " fields");
        else if (state->streamed_bytes + state->result.body.size() + size > state->request.max_response_bytes)
            fail(state, "HTTP_RESPONSE_TOO_LARGE",
                 "the response is larger than " + std::to_string(state->request.max_response_bytes) + " bytes");
        else
            fail(state, "HTTP_REQUEST_FAILED", std::string("malformed response: ") + llhttp_errno_name(error));
        return false;
    }

    // A kept connection the server closed before answering anything of this exchange: the
    // request goes again on a new one (once), as if it had never been kept.
    static bool retry_fresh(State *state) {
        if (!state->reused || state->received) return false;
        state->reused = false;
        close_tcp(state, [](State *again) { start(again); });
        return true;
    }

    static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer) {
        auto *state = static_cast<State *>(stream->data);
        if (state->parked) {  // the server closed it, or sent what nobody asked for
            if (nread != 0) retire(state);
            return;
        }
        if (state->finished) return;
        bool ended = nread < 0;
        if (nread > 0) {
            state->received = true;
            arm(state, state->request.idle_timeout_ms, "idle");
        } else if (ended && retry_fresh(state)) {
            return;
        }
        if (nread > 0 && state->tls) {
            state->tls->received(buffer->base, static_cast<size_t>(nread));
            if (state->handshaking && (!advance_handshake(state) || state->handshaking)) return;
            std::string plain, error;
            bool closed = false;
            if (!state->tls->read(plain, closed, error))
                return fail(state, "HTTP_REQUEST_FAILED", "TLS with " + state->url.host + " failed: " + error);
            send(state, state->tls->take_outgoing());  // TLS 1.3 may answer session tickets
            if (!feed(state, plain.data(), plain.size())) return;
            ended = ended || closed;
        } else if (nread > 0) {
            if (!feed(state, buffer->base, static_cast<size_t>(nread))) return;
        }
        if (ended && !state->complete) {
            if (nread == UV_EOF || nread >= 0) llhttp_finish(&state->parser);
            if (!state->complete)
                return fail(state, "HTTP_REQUEST_FAILED",
                            nread >= 0 || nread == UV_EOF
                                ? "the connection closed before the response ended"
                                : std::string("connection error: ") + uv_strerror(static_cast<int>(nread)));
        }
        if (state->complete) on_response(state);
    }

    static void on_response(State *state) {
        HttpFetchResult &result = state->result;
        result.status = state->parser.status_code;
        for (auto &[name, value] : result.headers)
            for (char &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string location;
        for (const auto &[name, value] : result.headers)
            if (name == "location") location = value;
        bool redirect = result.status == 301 || result.status == 302 || result.status == 303 || result.status == 307 ||
                        result.status == 308;
        if (redirect && !location.empty()) {
            if (state->redirects >= state->request.max_redirects)
                return fail(state, "HTTP_REQUEST_FAILED",
                            "more than " + std::to_string(state->request.max_redirects) + " redirects");
            state->redirects++;
            if (location.find("://") == std::string::npos)  // a path on the same origin
                location = state->url.scheme + "://" +
                           (state->url.host.find(':') != std::string::npos ? "[" + state->url.host + "]"
                                                                           : state->url.host) +
                           ":" + std::to_string(state->url.port) +
                           (location.empty() || location[0] != '/' ? "/" : "") + location;
            // Credentials are for the origin they were written for: another origin never gets them.
            ParsedUrl next;
            if (parse_url(location, next) &&
                (next.scheme != state->url.scheme || next.host != state->url.host || next.port != state->url.port))
                drop_credentials(state->request.headers);
            if (result.status == 303 ||
                ((result.status == 301 || result.status == 302) && state->request.method == "POST")) {
                state->request.method = "GET";
                state->request.body.clear();
            }
            state->current_url = location;
            close_tcp(state, [](State *again) { start(again); });
            return;
        }
        result.ok = true;
        result.url = state->current_url;
        HttpFetchResult done = std::move(result);
        auto callback = std::move(state->done);
        state->done = nullptr;
        if (park(state)) {
            if (callback) callback(std::move(done));
            return;
        }
        state->done = std::move(callback);
        finish_state(state,
                     [done](std::function<void(HttpFetchResult)> &callback) mutable { callback(std::move(done)); });
    }

    static void fail(State *state, std::string code, std::string message) {
        HttpFetchResult result;
        result.error_code = std::move(code);
        result.message = std::move(message);
        finish_state(state,
                     [result](std::function<void(HttpFetchResult)> &callback) mutable { callback(std::move(result)); });
    }

    // Reports once (unless cancelled), then closes the socket; the State is freed when nothing
    // can call back into it any more.
    static void finish_state(State *state, std::function<void(std::function<void(HttpFetchResult)> &)> report) {
        if (state->finished) return;
        state->finished = true;
        auto done = std::move(state->done);
        state->done = nullptr;
        close_timer(state);
        close_tcp(state, nullptr);
        if (report && done) report(done);
    }

    static void close_tcp(State *state, void (*then)(State *)) {
        state->tls.reset();
        state->handshaking = false;
        if (state->tcp_open) {
            state->tcp_open = false;
            state->tcp_closing = true;
            struct Close {
                State *state;
                void (*then)(State *);
            };
            state->tcp.data = new Close{state, then};
            uv_close(reinterpret_cast<uv_handle_t *>(&state->tcp), [](uv_handle_t *handle) {
                auto *close = static_cast<Close *>(handle->data);
                State *state = close->state;
                auto then = close->then;
                delete close;
                state->tcp.data = state;
                state->tcp_closing = false;
                if (then && !state->finished)
                    then(state);
                else
                    release(state);
            });
        } else if (then && !state->finished) {
            then(state);
        } else {
            release(state);
        }
    }

    static void close_timer(State *state) {
        if (!state->timer_open) return;
        state->timer_open = false;
        uv_timer_stop(&state->timer);
        uv_close(reinterpret_cast<uv_handle_t *>(&state->timer), [](uv_handle_t *handle) {
            auto *state = static_cast<State *>(handle->data);
            state->timer.data = nullptr;
            release(state);
        });
    }

    // Called as each handle or request lets go; the State is done once the fetch finished and
    // nothing (resolver, socket, timer) can call back any more. The memory goes once the owner
    // has let go too.
    static void release(State *state) {
        if (!state->finished || state->resolving || state->tcp_open || state->tcp_closing || state->timer.data) return;
        if (state->released) return;
        state->released = true;
        if (state->owner_gone) delete state;
    }

private:
    State *state_;
};

}  // namespace

std::unique_ptr<HttpClientCall> http_fetch(uv_loop_t *loop, HttpFetch fetch, const EgressPolicy &policy,
                                           std::function<void(HttpFetchResult)> done) {
    if (fetch.keep_alive)
        if (Fetch::State *state = Fetch::adopt(loop, fetch, policy)) {
            state->request = std::move(fetch);
            state->policy = &policy;
            state->done = std::move(done);
            state->current_url = state->request.url;
            parse_url(state->current_url, state->url);  // the same origin; the path is this fetch's
            state->redirects = 0;
            state->finished = false;
            state->owner_gone = false;
            state->released = false;
            state->reused = true;
            auto call = std::make_unique<Fetch>(state);
            Fetch::resume(state);
            return call;
        }
    auto *state = new Fetch::State();
    state->loop = loop;
    state->request = std::move(fetch);
    state->policy = &policy;
    state->done = std::move(done);
    state->current_url = state->request.url;
    uv_timer_init(loop, &state->timer);
    state->timer.data = state;
    state->timer_open = true;
    auto call = std::make_unique<Fetch>(state);
    Fetch::start(state);
    return call;
}

}  // namespace flowgres::executor
