// The capture step: after the answer, the call's record goes to gateway_record with the others
// that ended meanwhile (group commit, as runs' records do): a model_usage row with its trace id,
// and its hold captured at what the caller pays — the call's cost at its route's prices — or
// released (pays 0) when nothing reached the client: a failure before the first token, or a
// client that left. A batch the database refuses goes again a record at a time; a record it
// still refuses is logged, and its hold is released when it expires or its backend ends:
// nothing is charged twice, and nothing for a call not recorded.
#include "flowgres/json.hpp"
#include "gateway/gateway_call.hpp"
#include "group_commit.hpp"
#include "log.hpp"

namespace flowgres::daemon::gateway {
namespace {

constexpr size_t kMaxRecordsPerBatch = 200;

std::string record_of(const GatewayCall &call) {
    const llm::CallResult &result = call.result;
    bool reported = result.usage.has_value();
    llm::Usage usage = usage_of(call);
    long long cost = call.route ? llm::cost_micros(*call.route, usage) : 0;
    // What reached the client is paid for: a whole answer, or the part of a stream sent before
    // the provider failed. A client that left pays nothing.
    bool delivered = !call.client_gone && (result.ok || (call.stream_opened && result.streamed_deltas > 0));
    Json record(new_json_object());
    json_t *r = record.get();
    json_object_set_new(r, "workspace_id", json_string(call.workspace_id.c_str()));
    json_object_set_new(r, "api_key_id", json_string(call.key_id.c_str()));
    json_object_set_new(r, "user_id", json_string(call.user_id.c_str()));
    json_object_set_new(r, "trace_id", json_string(call.call->trace.trace_id.c_str()));
    if (!call.hold_id.empty()) json_object_set_new(r, "hold_id", json_string(call.hold_id.c_str()));
    json_object_set_new(r, "provider", json_string(call.route ? call.route->provider.c_str() : "none"));
    json_object_set_new(r, "model", json_string(call.chat.model.c_str()));
    json_object_set_new(r, "prompt_tokens", json_integer(usage.prompt_tokens));
    json_object_set_new(r, "completion_tokens", json_integer(usage.completion_tokens));
    json_object_set_new(r, "cost_micros", json_integer(cost));
    json_object_set_new(r, "charge", json_integer(delivered ? cost : 0));
    json_object_set_new(r, "latency_ms", json_integer(result.latency_ms));
    json_object_set_new(r, "ok", json_boolean(result.ok && !call.client_gone));
    json_object_set_new(r, "usage_reported", json_boolean(reported));
    // A conversation keeps the call's last message and the answer the client received.
    if (!call.conversation_id.empty() && delivered && !call.chat.messages.empty()) {
        const llm::Message &last = call.chat.messages.back();
        json_object_set_new(r, "conversation_id", json_string(call.conversation_id.c_str()));
        json_object_set_new(r, "messages", json_pack("[{s:s, s:s%}, {s:s, s:s%}]", "role", last.role.c_str(), "content",
                                                     last.content.data(), last.content.size(), "role", "assistant",
                                                     "content", result.text.data(), result.text.size()));
    }
    if (call.client_gone)
        json_object_set_new(r, "error_code", json_string("CLIENT_GONE"));
    else if (!result.ok)
        json_object_set_new(r, "error_code", json_string(result.error_code.c_str()));
    return dump_json(r);
}

class CaptureStep : public Step {
public:
    explicit CaptureStep(WorkerContext &worker)
        : worker_(worker), records_(kMaxRecordsPerBatch, 1, [this](std::vector<std::string> batch) { write(std::move(batch)); }) {}

    void run(const std::shared_ptr<GatewayCall> &call, Next next) override {
        call->active.reset();
        records_.add(record_of(*call));
        next();
    }

private:
    void write(std::vector<std::string> batch) {
        std::string calls = "[";
        for (const std::string &record : batch) calls += (calls.size() > 1 ? "," : "") + record;
        calls += "]";
        std::vector<pg::Statement> statements;
        statements.push_back(pg::Statement{kActAsOperator, {}});
        statements.push_back(pg::Statement{"select flowgres.gateway_record($1::jsonb)::text", {calls}});
        auto sent = std::make_shared<std::vector<std::string>>(std::move(batch));
        worker_.pool.run(std::move(statements), [this, sent](pg::JobResult &&result) {
            if (result.outcome != pg::JobResult::Outcome::ok && sent->size() > 1) {
                // One call the database refuses must not cost the others their record: each
                // goes again on its own.
                records_.resend_alone(std::move(*sent));
            } else if (result.outcome != pg::JobResult::Outcome::ok) {
                // Not the record itself: it may hold what was said in a conversation.
                log_line(LogLevel::error, "a gateway call was not recorded: its hold expires",
                         {{"error", result.message}});
            }
            records_.answered();
        });
    }

    WorkerContext &worker_;
    GroupCommit<std::string> records_;
};

}  // namespace

std::unique_ptr<Step> capture_step(WorkerContext &worker) { return std::make_unique<CaptureStep>(worker); }

}  // namespace flowgres::daemon::gateway
