// The gateway's entry (gateway_call.hpp says what a call goes through): /v1/chat/completions,
// /v1/embeddings and /v1/models, for one worker.
#pragma once

#include <memory>
#include <vector>

#include "gateway/gateway_call.hpp"

namespace flowgres::daemon::gateway {

class Gateway {
public:
    explicit Gateway(WorkerContext &worker);
    ~Gateway();
    // Any request whose path starts with /v1/.
    void handle(const std::shared_ptr<Call> &call);

private:
    void run(const std::shared_ptr<GatewayCall> &call, size_t step);

    WorkerContext &worker_;
    std::vector<std::unique_ptr<Step>> chat_steps_;    // request, admission, provider, capture
    std::vector<std::unique_ptr<Step>> embedding_steps_;  // request, admission, embeddings, capture
    std::vector<std::unique_ptr<Step>> model_steps_;      // request, admission
};

}  // namespace flowgres::daemon::gateway
