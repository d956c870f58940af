// The OpenAI-compatible gateway (README "Gateway"): POST /v1/chat/completions and GET
// /v1/models, spoken as OpenAI's wire protocol so its clients work unchanged. A call is one
// context that a list of steps runs through (gateway.cpp lists them, one file each):
//   request     read and check the body as OpenAI documents it;
//   admission   one call into the extension: the key (scope llm:execute), its workspace, the
//               model's routes and the wallet hold of the call's worst-case cost;
//   provider    the call on the worker's loop, streamed to the client as it arrives (or
//               answered whole), falling back along the model's routes before the first token
//               (for /v1/embeddings, the embeddings step: one plain request to the provider);
//   capture     the call's usage recorded and its hold captured at its cost (or released when
//               it failed before anything reached the client, or the client left), in batches
//               after the answer.
// A step either calls next() or answers the call itself and ends the list there; the capture
// step runs for every call that was admitted, whatever the provider did.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "executor/http_client.hpp"
#include "flowgres/llm_openai.hpp"
#include "llm/chat_client.hpp"
#include "llm/routes.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon::gateway {

struct GatewayCall {
    std::shared_ptr<Call> call;

    // request
    bool list_models = false;
    bool embeddings = false;       // POST /v1/embeddings: `upstream_body` goes to the provider as it is
    std::string upstream_body;
    llm::ChatRequest chat;
    bool stream = false;
    bool include_usage = false;
    long long prompt_estimate = 0;
    std::string key_hash;
    std::string conversation_id;  // X-Conversation-Id: the call's last message and answer are kept in it

    // admission
    std::string key_id, user_id, workspace_id, hold_id;
    long long hold = 0;
    std::vector<llm::Route> routes;

    // provider
    std::unique_ptr<llm::ChatCall> active;
    std::unique_ptr<executor::HttpClientCall> fetch;  // an embeddings request
    const llm::Route *route = nullptr;  // the route that answered (or failed last)
    llm::CallResult result;
    bool stream_opened = false;
    bool client_gone = false;
    long long created = 0;  // epoch seconds, as OpenAI's answers carry it
};

using Next = std::function<void()>;

class Step {
public:
    virtual ~Step() = default;
    virtual void run(const std::shared_ptr<GatewayCall> &call, Next next) = 0;
};

// The call's usage as it is answered and paid: the provider's report; without one, a whole
// answer estimated from its text, a stream from its deltas counted on the wire, an embedding
// from its input; nothing when nothing came back.
llm::Usage usage_of(const GatewayCall &call);

// OpenAI's error answer: {"error": {message, type, param, code}} with the call's headers.
void answer_error(WorkerContext &worker, const GatewayCall &call, int status, std::string_view type,
                  std::string_view code, std::string_view message, std::string_view param = {});

// The headers every gateway answer carries: the request id and the trace id.
void add_trace_headers(const GatewayCall &call, http::Response &response);

std::unique_ptr<Step> request_step(WorkerContext &worker);
std::unique_ptr<Step> admission_step(WorkerContext &worker);
std::unique_ptr<Step> provider_step(WorkerContext &worker);
std::unique_ptr<Step> embeddings_step(WorkerContext &worker);
// The recorder outlives calls: it batches their records (group commit).
std::unique_ptr<Step> capture_step(WorkerContext &worker);

}  // namespace flowgres::daemon::gateway
