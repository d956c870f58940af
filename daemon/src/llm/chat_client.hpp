// The LLM client (README "The llm step"): one chat completion against one provider, on the
// caller's loop, over the step HTTP client (so the egress policy and TLS verification apply to
// provider hosts as to http steps). The answer is read as it streams (Server-Sent Events, one
// delta at a time, the usage chunk at the end), never buffered whole — unless the request asks
// for it whole (ChatRequest::stream false: the gateway's plain calls, whose client wants it so;
// it is then bounded by max_response_bytes and total_timeout_ms, and no delta is reported); no token within
// first_token_timeout_ms, a silence longer than idle_timeout_ms or a call longer than
// total_timeout_ms fails it with LLM_TIMEOUT. 429 and 5xx answers and failed connections are
// retried while no token has been seen, after the provider's Retry-After or an exponential
// backoff; a wait longer than max_backoff_ms is not taken (the call fails at once, so a
// fallback model can be tried instead).
// Connections are kept alive per provider (HttpFetch::keep_alive): the next call to the same
// provider from this worker reuses one, TLS session included.
// Not for: choosing models, prices, quotas (the llm step does that).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "executor/egress.hpp"
#include "executor/tls_client.hpp"
#include "flowgres/llm_openai.hpp"

namespace flowgres::llm {

struct Endpoint {
    std::string provider;  // its name, for messages
    std::string base_url;  // "https://api.openai.com/v1": /chat/completions is appended
    std::string api_key;   // "" for a provider that takes none
};

struct CallLimits {
    uint64_t connect_timeout_ms = 5000;
    uint64_t first_token_timeout_ms = 30000;
    uint64_t idle_timeout_ms = 30000;
    uint64_t total_timeout_ms = 120000;
    int max_attempts = 3;
    uint64_t first_backoff_ms = 200;
    uint64_t max_backoff_ms = 10000;
    size_t max_response_bytes = 8 * 1024 * 1024;
};

struct CallResult {
    bool ok = false;
    std::string text;              // what streamed in (also when the call failed part-way)
    std::optional<Usage> usage;    // as the provider reported it (nullopt: it reported none)
    long long streamed_deltas = 0;  // content pieces received
    std::string finish_reason;
    std::string error_code;  // LLM_REQUEST_FAILED, LLM_RATE_LIMITED, LLM_TIMEOUT, EGRESS_DENIED, LLM_STREAM_STOPPED
    std::string message;
    int status = 0;  // the last HTTP status (0: none)
    int attempts = 0;
    long long latency_ms = 0;         // from the first attempt to the end
    long long first_token_ms = -1;    // to the first delta, -1 when none came
};

class ChatCall {
public:
    virtual ~ChatCall() = default;
    virtual void cancel() = 0;  // nothing is reported after this
    // What the call has received so far (text, pieces, usage, attempts, time): for metering
    // a call that is being stopped.
    virtual CallResult progress() const = 0;
};

// Starts the call. on_delta sees each content piece as it arrives; returning false stops the
// answer (done then reports LLM_STREAM_STOPPED with the text so far). done runs once, from
// the loop, unless cancelled.
std::unique_ptr<ChatCall> chat(uv_loop_t *loop, Endpoint endpoint, const ChatRequest &request, CallLimits limits,
                               std::shared_ptr<const executor::EgressPolicy> egress,
                               std::shared_ptr<const executor::TlsClientContext> tls,
                               std::function<bool(std::string_view delta)> on_delta,
                               std::function<void(CallResult)> done);

}  // namespace flowgres::llm
