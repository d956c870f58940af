// The workflow executor (README "Workflows and executions"): runs a validated graph on the event loop in dependency
// order, independent branches at once, a condition's untaken side skipped (and logged as
// skipped), each node under its timeout with its retries, the whole run under its own
// timeout, and cancellable at any point (in-flight nodes are told to stop). It keeps no state
// outside the Run: the caller persists node logs and the outcome. One file per node type in
// nodes/; a type without a runner here cannot run, and the run says so before it starts.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "executor/egress.hpp"
#include "executor/tls_client.hpp"
#include "executor/workspace_database.hpp"
#include "llm/chat_client.hpp"
#include "llm/routes.hpp"
#include "weak_timer.hpp"
#include "flowgres/json.hpp"
#include "flowgres/output_safety.hpp"
#include "flowgres/secrets.hpp"
#include "flowgres/template.hpp"
#include "flowgres/workflow.hpp"

namespace flowgres::executor {

// What one node attempt produced.
struct NodeOutcome {
    bool ok = true;
    Json output;             // the node's output (null when none)
    std::string error_code;  // NODE_FAILED, NODE_TIMEOUT, …
    std::string error_message;
    std::optional<bool> branch;  // a condition's result: which handle its edges may leave by
    Json variables;              // [{"op": "set"|"update", "name", "value"}] for the node log
    // Model calls the attempt made, whether it succeeded or not (they were spent either way):
    // their tokens count for the run, and each call becomes a model_usage row.
    long long prompt_tokens = 0, completion_tokens = 0;
    Json model_calls;  // [{node_id, provider, model, prompt_tokens, completion_tokens, cost_micros, …}]

    static NodeOutcome success(Json output) {
        NodeOutcome outcome;
        outcome.output = std::move(output);
        return outcome;
    }
    static NodeOutcome failure(std::string code, std::string message) {
        NodeOutcome outcome;
        outcome.ok = false;
        outcome.error_code = std::move(code);
        outcome.error_message = std::move(message);
        return outcome;
    }
};

// A running node attempt; cancel() asks it to stop (it then reports nothing more).
class NodeTask {
public:
    virtual ~NodeTask() = default;
    virtual void cancel() {}
    // Before a cancel: adds to `outcome` what the attempt has already spent (its model calls'
    // tokens), so a timed-out or stopped step is still metered.
    virtual void spent(NodeOutcome &) {}
};

// The secrets a run's credential fields reference (README "Secrets"), opened by the daemon
// before the run starts: a rotation applies to the next run, never to one under way.
struct RunSecrets {
    secrets::Values values;  // name, plain value: masked out of everything the run reports
    Json object;             // {"NAME": "value"}: what {{secrets.NAME}} renders from
    // Those that cannot be used, by name: the error code (SECRET_NOT_FOUND, SECRET_REVOKED,
    // SECRET_EXPIRED, SECRET_INVALID, …) and message a step that needs one fails with.
    std::map<std::string, std::pair<std::string, std::string>> unavailable;
};

struct RunOptions {
    long long timeout_ms = 300000;  // the whole run
    // Where http steps may connect (nothing special-purpose unless allow-listed).
    std::shared_ptr<const EgressPolicy> egress = std::make_shared<EgressPolicy>();
    size_t max_http_response_bytes = 1024 * 1024;
    size_t max_http_header_bytes = 64 * 1024;
    // http steps' phase timeouts (http_client.hpp); each step's own timeout is their ceiling.
    uint64_t http_connect_timeout_ms = 5000;
    uint64_t http_first_byte_timeout_ms = 30000;
    uint64_t http_idle_timeout_ms = 30000;
    std::shared_ptr<const TlsClientContext> tls;  // https steps (refused without)
    // Told, from the loop, as each node attempt starts and as it finishes (or is skipped):
    // "node_started" / "node_finished" and the event's data (a JSON object's text), for GET
    // …/events. Nothing is told after the run has finished.
    std::function<void(const char *event, const std::string &data)> on_event;
    // The workspace's own database, for database steps (null: they fail, naming why).
    std::shared_ptr<WorkspaceDatabase> database;
    // Opened secrets (null when the workflow references none).
    std::shared_ptr<const RunSecrets> secrets;
    // The routes to the models llm steps name (null when there are none), and the limits of
    // each model call.
    std::shared_ptr<const llm::RunModels> models;
    llm::CallLimits llm_limits;
    // The output safety rules every model answer is checked against (null: none apply).
    std::shared_ptr<const safety::RuleSet> safety;
    // Holds a model call's worst-case tokens against the workspace's quota and budget before
    // it is sent; `done` gets nullopt when held, else the refusal's code and message. Null:
    // calls go unchecked (tests of the engine alone).
    using TokenRefusal = std::optional<std::pair<std::string, std::string>>;
    using TokenReserver = std::function<void(long long tokens, std::function<void(TokenRefusal)> done)>;
    TokenReserver reserve_tokens;
};

// A node_finished event's output is left out past this size (the node log keeps it whole).
inline constexpr size_t kMaxEventOutputBytes = 16 * 1024;

// What a node runner sees: its node, the loop, the values templates may name, and the run's
// variables (a variable node writes them).
struct NodeCall {
    const RunOptions &options;
    uv_loop_t *loop;
    const workflow::Node &node;
    const TemplateRoot &roots;
    json_t *variables;                             // the run's {"name": value} object, owned by the run
    std::vector<const json_t *> upstream_outputs;  // outputs of the nodes with an edge into this one
};

using NodeDone = std::function<void(NodeOutcome)>;
// Starts one attempt. It may call `done` before returning (synchronous nodes) or later from
// the loop; it must call it exactly once unless cancelled.
using NodeRunner = std::unique_ptr<NodeTask> (*)(NodeCall &call, NodeDone done);

class NodeRunners {
public:
    void add(std::string type, NodeRunner runner) { runners_[std::move(type)] = runner; }
    NodeRunner find(const std::string &type) const;
    // start, input, transform, condition, variable, http, llm, delay, db_*, output, end.
    static const NodeRunners &builtin();

private:
    std::map<std::string, NodeRunner> runners_;
};

struct NodeLog {
    std::string node_id;
    std::string node_type;
    std::string status;  // completed, failed, skipped
    int attempt = 1;
    std::string started_at;  // ISO 8601, empty for skipped nodes
    std::string finished_at;
    long long duration_ms = 0;
    Json output;
    std::string output_json;  // the output as JSON text once written out (its event, its log): dumped once
    Json error;      // {"error_code", "message"}
    Json variables;  // the variable records of this attempt
    // One element of node_logs_append's array.
    std::string to_json() const;
};

struct RunResult {
    std::string status;  // completed, failed, cancelled
    Json outputs;        // {"<output node id>": value, …}
    Json error;          // {"error_code", "message", "node_id"} when failed
    std::vector<NodeLog> logs;
    long long prompt_tokens = 0, completion_tokens = 0;  // every model call's
    Json model_calls;                                     // an array, for model_usage_record
};

class Run;
using RunTimer = daemon::WeakTimer<Run>;  // a one-shot loop timer that finds its run weakly

class Run : public std::enable_shared_from_this<Run> {
public:
    using Finished = std::function<void(RunResult &&)>;
    // `workflow` must have passed validation. `finished` runs once, from the loop.
    static std::shared_ptr<Run> start(uv_loop_t *loop, std::shared_ptr<const workflow::Workflow> workflow, Json inputs,
                                      RunOptions options, Finished finished,
                                      const NodeRunners &runners = NodeRunners::builtin());
    void cancel();
    ~Run();

private:
    Run() = default;
    struct NodeState;
    void begin();
    void launch(const std::string &node_id);
    void attempt(const std::string &node_id);
    void settle(const std::string &node_id, NodeOutcome outcome, uint64_t token);
    void release_successors(const std::string &node_id);
    void finish(std::string status, Json error);
    void tell(const char *event, const std::string &data);
    void tell_finished(NodeLog &log, bool retrying);
    const json_t *root(const std::string &name) const;

    uv_loop_t *loop_ = nullptr;
    std::shared_ptr<const workflow::Workflow> workflow_;
    const NodeRunners *runners_ = nullptr;
    Json inputs_;
    Json variables_;
    Json null_;
    RunOptions options_;
    Finished finished_;
    TemplateRoot roots_;
    std::map<std::string, std::unique_ptr<NodeState>> nodes_;
    std::map<std::string, std::vector<const workflow::Edge *>> incoming_, outgoing_;
    std::vector<NodeLog> logs_;
    long long prompt_tokens_ = 0, completion_tokens_ = 0;
    Json model_calls_;
    RunTimer *run_timer_ = nullptr;
    size_t unsettled_ = 0;
    uint64_t next_token_ = 1;
    bool done_ = false;
};

// Now, as ISO 8601 with milliseconds (UTC), for node log timestamps.
std::string iso_now();

}  // namespace flowgres::executor
