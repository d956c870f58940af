// One chat completion with its retries and timeouts (chat_client.hpp). The call's state is a
// shared object that its timers and the current fetch find weakly: cancel() or the end stops
// them all, and nothing calls back into a finished call.
#include "llm/chat_client.hpp"

#include <chrono>
#include <cstdlib>

#include "executor/http_client.hpp"
#include "flowgres/sse.hpp"
#include "weak_timer.hpp"

namespace flowgres::llm {
namespace {

using Clock = std::chrono::steady_clock;

class State;

using Timer = daemon::WeakTimer<State>;

Timer *start_timer(uv_loop_t *loop, std::weak_ptr<State> state, uint64_t milliseconds, std::function<void(State &)> fire) {
    return Timer::start(loop, std::move(state), milliseconds, std::move(fire));
}

void close_timer(Timer *&timer) { Timer::close(timer); }

long long since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

class State : public std::enable_shared_from_this<State> {
public:
    uv_loop_t *loop = nullptr;
    Endpoint endpoint;
    std::string body;
    bool streaming = true;  // false: the answer is asked for whole (ChatRequest::stream)
    CallLimits limits;
    std::shared_ptr<const executor::EgressPolicy> egress;
    std::shared_ptr<const executor::TlsClientContext> tls;
    std::function<bool(std::string_view)> on_delta;
    std::function<void(CallResult)> done;

    CallResult result;
    Clock::time_point started;
    std::unique_ptr<executor::HttpClientCall> fetch;
    Timer *total_timer = nullptr;
    Timer *first_token_timer = nullptr;
    Timer *backoff_timer = nullptr;
    SseReader reader{1024 * 1024};
    bool stream_done = false;     // [DONE] seen
    bool stopped = false;         // on_delta said stop
    bool malformed = false;       // a chunk that is not one
    bool finished = false;

    ~State() { stop_timers(); }

    void begin() {
        started = Clock::now();
        total_timer = start_timer(loop, weak_from_this(), limits.total_timeout_ms, [](State &state) {
            state.fail("LLM_TIMEOUT", "the call to " + state.endpoint.provider + " took longer than " +
                                          std::to_string(state.limits.total_timeout_ms) + " ms");
        });
        attempt();
    }

    void attempt() {
        close_timer(backoff_timer);
        result.attempts++;
        reader = SseReader(1024 * 1024);
        stream_done = false;
        executor::HttpFetch request;
        request.method = "POST";
        std::string base = endpoint.base_url;
        while (!base.empty() && base.back() == '/') base.pop_back();
        request.url = base + "/chat/completions";
        request.headers = {{"Content-Type", "application/json"},
                           {"Accept", streaming ? "text/event-stream" : "application/json"}};
        if (!endpoint.api_key.empty()) request.headers.emplace_back("Authorization", "Bearer " + endpoint.api_key);
        request.body = body;
        request.max_response_bytes = limits.max_response_bytes;
        request.connect_timeout_ms = limits.connect_timeout_ms;
        // A whole answer comes when it is all written: the call's own limit bounds the wait.
        request.first_byte_timeout_ms = streaming ? limits.first_token_timeout_ms : limits.total_timeout_ms;
        request.idle_timeout_ms = limits.idle_timeout_ms;
        request.max_redirects = 0;  // a provider's API does not move; a redirect is an error
        request.keep_alive = true;  // the next call to this provider reuses the connection
        request.tls = tls;
        std::weak_ptr<State> weak = weak_from_this();
        if (streaming)
            request.on_body = [weak](std::string_view piece) {
                auto state = weak.lock();
                return state && state->read(piece);
            };
        if (streaming && result.streamed_deltas == 0) {
            close_timer(first_token_timer);
            first_token_timer = start_timer(loop, weak, limits.first_token_timeout_ms, [](State &state) {
                state.fail("LLM_TIMEOUT", state.endpoint.provider + " sent no token within " +
                                              std::to_string(state.limits.first_token_timeout_ms) + " ms");
            });
        }
        fetch = executor::http_fetch(loop, std::move(request), *egress, [weak](executor::HttpFetchResult answer) {
            if (auto state = weak.lock()) state->answered(std::move(answer));
        });
    }

    // Streamed bytes of a 2xx answer. False stops the fetch.
    bool read(std::string_view piece) {
        return reader.feed(piece, [this](const std::string &data) {
            if (stream_done) return true;
            if (data == "[DONE]") {
                stream_done = true;
                return true;
            }
            auto chunk = parse_stream_chunk(data);
            if (!chunk) {
                malformed = true;
                return false;
            }
            if (chunk->usage) result.usage = chunk->usage;
            if (!chunk->finish_reason.empty()) result.finish_reason = chunk->finish_reason;
            if (chunk->delta.empty()) return true;
            if (result.streamed_deltas++ == 0) {
                result.first_token_ms = since(started);
                close_timer(first_token_timer);
            }
            result.text += chunk->delta;
            if (on_delta && !on_delta(chunk->delta)) {
                stopped = true;
                return false;
            }
            return true;
        });
    }

    void answered(executor::HttpFetchResult answer) {
        fetch.reset();
        if (finished) return;
        result.status = answer.status;
        if (stopped) return fail("LLM_STREAM_STOPPED", "the answer was stopped as it streamed");
        if (malformed) return fail("LLM_REQUEST_FAILED", endpoint.provider + " sent a chunk that is not JSON");
        if (!answer.ok) {
            if (answer.error_code == "EGRESS_DENIED") return fail(answer.error_code, answer.message);
            std::string code = answer.error_code == "HTTP_TIMEOUT" ? "LLM_TIMEOUT" : "LLM_REQUEST_FAILED";
            if (answer.error_code == "HTTP_STREAM_STOPPED")
                return fail("LLM_REQUEST_FAILED", "an event of the answer was larger than 1 MiB");
            // Tokens already went to the caller: the answer cannot be taken back and asked again.
            if (result.streamed_deltas > 0)
                return fail(code, "the answer from " + endpoint.provider + " broke off: " + answer.message);
            return retry_or_fail(code, answer.message, 0);
        }
        if (answer.status >= 200 && answer.status < 300 && !streaming) {
            std::optional<Completion> whole = parse_completion(answer.body);
            if (!whole) return fail("LLM_REQUEST_FAILED", endpoint.provider + " answered with no completion in its body");
            result.text = std::move(whole->text);
            result.finish_reason = std::move(whole->finish_reason);
            result.usage = whole->usage;
            result.first_token_ms = since(started);
            return succeed();
        }
        if (answer.status >= 200 && answer.status < 300) {
            if (result.streamed_deltas == 0 && !stream_done && result.finish_reason.empty())
                return fail("LLM_REQUEST_FAILED", endpoint.provider + " answered without an event stream");
            return succeed();
        }
        std::string message = endpoint.provider + " answered " + std::to_string(answer.status) + ": " +
                              error_message(answer.body);
        if (answer.status == 429 || answer.status >= 500) {
            uint64_t retry_after = 0;
            for (const auto &[name, value] : answer.headers)
                if (name == "retry-after") retry_after = static_cast<uint64_t>(std::strtoull(value.c_str(), nullptr, 10)) * 1000;
            return retry_or_fail(answer.status == 429 ? "LLM_RATE_LIMITED" : "LLM_REQUEST_FAILED", message, retry_after);
        }
        fail("LLM_REQUEST_FAILED", message);
    }

    void retry_or_fail(const std::string &code, const std::string &message, uint64_t retry_after_ms) {
        uint64_t wait = retry_after_ms ? retry_after_ms : limits.first_backoff_ms << (result.attempts - 1);
        if (result.attempts >= limits.max_attempts || wait > limits.max_backoff_ms ||
            static_cast<uint64_t>(since(started)) + wait >= limits.total_timeout_ms)
            return fail(code, message + " (after " + std::to_string(result.attempts) + " attempt" +
                                  (result.attempts == 1 ? "" : "s") + ")");
        backoff_timer = start_timer(loop, weak_from_this(), wait, [](State &state) { state.attempt(); });
    }

    void succeed() {
        result.ok = true;
        report();
    }

    void fail(std::string code, std::string message) {
        if (finished) return;
        result.ok = false;
        result.error_code = std::move(code);
        result.message = std::move(message);
        report();
    }

    void report() {
        if (finished) return;
        finished = true;
        stop_timers();
        if (fetch) {
            auto running = std::move(fetch);
            running->cancel();
        }
        result.latency_ms = since(started);
        auto callback = std::move(done);
        done = nullptr;
        on_delta = nullptr;
        if (callback) callback(std::move(result));
    }

    void stop_timers() {
        close_timer(total_timer);
        close_timer(first_token_timer);
        close_timer(backoff_timer);
    }
};

class Call : public ChatCall {
public:
    explicit Call(std::shared_ptr<State> state) : state_(std::move(state)) {}
    ~Call() override { cancel(); }
    void cancel() override {
        if (!state_) return;
        std::shared_ptr<State> state = std::move(state_);
        state->done = nullptr;
        state->on_delta = nullptr;
        state->finished = true;
        state->stop_timers();
        if (state->fetch) state->fetch->cancel();
    }
    CallResult progress() const override {
        if (!state_) return {};
        CallResult so_far = state_->result;
        so_far.latency_ms = since(state_->started);
        return so_far;
    }

private:
    std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<ChatCall> chat(uv_loop_t *loop, Endpoint endpoint, const ChatRequest &request, CallLimits limits,
                               std::shared_ptr<const executor::EgressPolicy> egress,
                               std::shared_ptr<const executor::TlsClientContext> tls,
                               std::function<bool(std::string_view)> on_delta, std::function<void(CallResult)> done) {
    auto state = std::make_shared<State>();
    state->loop = loop;
    state->endpoint = std::move(endpoint);
    state->body = chat_request_body(request);
    state->streaming = request.stream;
    state->limits = limits;
    state->egress = std::move(egress);
    state->tls = std::move(tls);
    state->on_delta = std::move(on_delta);
    state->done = std::move(done);
    state->begin();
    return std::make_unique<Call>(std::move(state));
}

}  // namespace flowgres::llm
