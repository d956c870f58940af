// The Run: readiness by edge resolution, attempts with timeouts and retries, skipping, and
// the end of the run. Callbacks from nodes and timers hold a weak reference and the attempt's
// token, so a late answer from a cancelled or timed-out attempt changes nothing.
#include "executor/engine.hpp"

#include <ctime>

#include "executor/nodes/nodes.hpp"
#include "log.hpp"

namespace flowgres::executor {

using Clock = std::chrono::steady_clock;

std::string iso_now() {
    return daemon::iso_timestamp();
}

NodeRunner NodeRunners::find(const std::string &type) const {
    auto found = runners_.find(type);
    return found == runners_.end() ? nullptr : found->second;
}

const NodeRunners &NodeRunners::builtin() {
    static const NodeRunners runners = [] {
        NodeRunners all;
        all.add("start", nodes::run_start);
        all.add("input", nodes::run_input);
        all.add("transform", nodes::run_transform);
        all.add("condition", nodes::run_condition);
        all.add("variable", nodes::run_variable);
        all.add("http", nodes::run_http);
        all.add("llm", nodes::run_llm);
        all.add("delay", nodes::run_delay);
        all.add("output", nodes::run_output);
        all.add("end", nodes::run_end);
        for (const char *type : {"db_select", "db_insert", "db_update", "db_delete", "db_query"})
            all.add(type, nodes::run_database_step);
        return all;
    }();
    return runners;
}

std::string NodeLog::to_json() const {
    auto or_null = [](const Json &value) { return value ? dump_json(value.get()) : std::string("null"); };
    return "{\"node_id\":" + json_quote(node_id) + ",\"node_type\":" + json_quote(node_type) +
           ",\"status\":" + json_quote(status) + ",\"attempt\":" + std::to_string(attempt) +
           ",\"started_at\":" + (started_at.empty() ? "null" : json_quote(started_at)) +
           ",\"finished_at\":" + (finished_at.empty() ? "null" : json_quote(finished_at)) +
           ",\"duration_ms\":" + std::to_string(duration_ms) +
           ",\"output\":" + (output && !output_json.empty() ? output_json : or_null(output)) +
           ",\"error\":" + or_null(error) + ",\"variables\":" + or_null(variables) + "}";
}

// A one-shot timer owned by nobody but libuv until it fires or is stopped: closed and freed
// in its close callback. It carries what the callback needs to find its run, weakly.
namespace {

RunTimer *start_timer(uv_loop_t *loop, std::weak_ptr<Run> run, uint64_t milliseconds, std::function<void(Run &)> fire) {
    return RunTimer::start(loop, std::move(run), milliseconds, std::move(fire));
}

void close_timer(RunTimer *&timer) { RunTimer::close(timer); }

}  // namespace

struct Run::NodeState {
    const workflow::Node *node = nullptr;
    enum class Status { waiting, running, completed, failed, skipped } status = Status::waiting;
    size_t unresolved_incoming = 0;
    size_t active_incoming = 0;
    int attempt = 0;
    uint64_t token = 0;
    std::unique_ptr<NodeTask> task;
    RunTimer *timer = nullptr;  // the attempt's timeout, or the wait before a retry
    Json output;
    std::optional<bool> branch;
    std::string started_at;
    Clock::time_point started;
};

std::shared_ptr<Run> Run::start(uv_loop_t *loop, std::shared_ptr<const workflow::Workflow> workflow, Json inputs,
                                RunOptions options, Finished finished, const NodeRunners &runners) {
    std::shared_ptr<Run> run(new Run());
    run->loop_ = loop;
    run->workflow_ = std::move(workflow);
    run->runners_ = &runners;
    run->inputs_ = inputs ? std::move(inputs) : Json(new_json_object());
    run->variables_.reset(new_json_object());
    run->null_.reset(json_null());
    run->options_ = options;
    run->finished_ = std::move(finished);
    run->begin();
    return run;
}

Run::~Run() {
    for (auto &[id, state] : nodes_) close_timer(state->timer);
    close_timer(run_timer_);
}

const json_t *Run::root(const std::string &name) const {
    if (name == "inputs") return inputs_.get();
    if (name == "vars" || name == "variables") return variables_.get();
    if (const json_t *input = json_object_get(inputs_.get(), name.c_str())) return input;
    auto found = nodes_.find(name);
    if (found != nodes_.end() && found->second->status == NodeState::Status::completed)
        return found->second->output ? found->second->output.get() : null_.get();
    if (name == "start") return inputs_.get();
    return nullptr;
}

void Run::begin() {
    roots_ = [this](const std::string &name) { return root(name); };
    for (const auto &node : workflow_->nodes) {
        auto state = std::make_unique<NodeState>();
        state->node = &node;
        nodes_[node.id] = std::move(state);
    }
    for (const auto &node : workflow_->nodes) {
        if (!runners_->find(node.type)) {
            finish("failed", Json(json_pack("{s:s, s:s, s:s}", "error_code", "NODE_FAILED", "message",
                                            ("node type " + node.type + " cannot run in this version").c_str(),
                                            "node_id", node.id.c_str())));
            return;
        }
    }
    for (const auto &edge : workflow_->edges) {
        incoming_[edge.target].push_back(&edge);
        outgoing_[edge.source].push_back(&edge);
        nodes_[edge.target]->unresolved_incoming++;
    }
    unsettled_ = nodes_.size();
    std::weak_ptr<Run> weak = weak_from_this();
    run_timer_ = start_timer(loop_, weak, static_cast<uint64_t>(options_.timeout_ms), [](Run &run) {
        run.finish(
            "failed",
            Json(json_pack("{s:s, s:s}", "error_code", "EXECUTION_TIMEOUT", "message",
                           ("the run took longer than " + std::to_string(run.options_.timeout_ms) + " ms").c_str())));
    });
    // Chosen before any runs: a synchronous start resolves its successors' edges at once, and
    // they are launched from there, not again from here.
    std::vector<std::string> ready;
    for (const auto &node : workflow_->nodes)
        if (nodes_[node.id]->unresolved_incoming == 0) ready.push_back(node.id);
    for (const auto &id : ready)
        if (!done_ && nodes_[id]->status == NodeState::Status::waiting) launch(id);
}

void Run::launch(const std::string &node_id) {
    NodeState &state = *nodes_[node_id];
    state.status = NodeState::Status::running;
    state.attempt = 0;
    attempt(node_id);
}

void Run::attempt(const std::string &node_id) {
    if (done_) return;
    NodeState &state = *nodes_[node_id];
    state.attempt++;
    uint64_t token = state.token = next_token_++;
    state.started_at = iso_now();
    state.started = Clock::now();
    tell("node_started", "{\"node_id\":" + json_quote(node_id) + ",\"node_type\":" + json_quote(state.node->type) +
                             ",\"attempt\":" + std::to_string(state.attempt) +
                             ",\"started_at\":" + json_quote(state.started_at) + "}");
    workflow::NodeOptions options = workflow::node_options(*state.node);
    std::weak_ptr<Run> weak = weak_from_this();
    if (options.timeout_ms)
        state.timer = start_timer(loop_, weak, static_cast<uint64_t>(*options.timeout_ms), [node_id, token](Run &run) {
            NodeState &timed_out = *run.nodes_[node_id];
            if (timed_out.token != token) return;
            NodeOutcome outcome = NodeOutcome::failure("NODE_TIMEOUT", "node " + node_id + " ran past its timeout");
            if (timed_out.task) {
                timed_out.task->spent(outcome);
                timed_out.task->cancel();
            }
            run.settle(node_id, std::move(outcome), token);
        });
    NodeCall call{options_, loop_, *state.node, roots_, variables_.get(), {}};
    for (const auto *edge : incoming_[node_id]) {
        const NodeState &source = *nodes_[edge->source];
        if (source.status == NodeState::Status::completed) call.upstream_outputs.push_back(source.output.get());
    }
    std::unique_ptr<NodeTask> task =
        (*runners_->find(state.node->type))(call, [weak, node_id, token](NodeOutcome outcome) {
            if (auto run = weak.lock()) run->settle(node_id, std::move(outcome), token);
        });
    // A synchronous node has settled already: its task, if any, is finished.
    if (!done_ && nodes_[node_id]->token == token && nodes_[node_id]->status == NodeState::Status::running)
        nodes_[node_id]->task = std::move(task);
}

void Run::settle(const std::string &node_id, NodeOutcome outcome, uint64_t token) {
    if (done_) return;
    NodeState &state = *nodes_[node_id];
    if (state.token != token || state.status != NodeState::Status::running) return;
    state.token = 0;           // this attempt is over: later answers from it are ignored
    close_timer(state.timer);  // also from inside its own callback: libuv allows that
    state.task.reset();
    if (options_.secrets && !options_.secrets->values.empty()) {
        // A step may echo a credential (a response that repeats its request): nothing the
        // run reports, stores or passes on carries a secret's value.
        const secrets::Values &values = options_.secrets->values;
        secrets::mask_json(outcome.output.get(), values);
        secrets::mask_json(outcome.variables.get(), values);
        outcome.error_message = secrets::mask_text(std::move(outcome.error_message), values);
    }

    prompt_tokens_ += outcome.prompt_tokens;
    completion_tokens_ += outcome.completion_tokens;
    if (json_array_size(outcome.model_calls.get()) > 0) {
        if (!model_calls_) model_calls_.reset(json_array());
        json_array_extend(model_calls_.get(), outcome.model_calls.get());
    }

    NodeLog log;
    log.node_id = node_id;
    log.node_type = state.node->type;
    log.attempt = state.attempt;
    log.started_at = state.started_at;
    log.finished_at = iso_now();
    log.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - state.started).count();
    log.variables = std::move(outcome.variables);
    if (outcome.ok) {
        log.status = "completed";
        log.output.reset(outcome.output ? json_incref(outcome.output.get()) : json_null());
        tell_finished(log, false);
        logs_.push_back(std::move(log));
        state.status = NodeState::Status::completed;
        state.output = std::move(outcome.output);
        state.branch = outcome.branch;
        unsettled_--;
        release_successors(node_id);
        if (!done_ && unsettled_ == 0) finish("completed", Json());
        return;
    }
    log.status = "failed";
    // What a failed attempt did produce (an http step's response, an llm step's attempts) is
    // kept in its log for whoever investigates.
    if (outcome.output) log.output.reset(json_incref(outcome.output.get()));
    log.error.reset(
        json_pack("{s:s, s:s}", "error_code", outcome.error_code.c_str(), "message", outcome.error_message.c_str()));
    workflow::NodeOptions options = workflow::node_options(*state.node);
    tell_finished(log, state.attempt <= options.retry_count);
    logs_.push_back(std::move(log));
    if (state.attempt <= options.retry_count) {
        std::weak_ptr<Run> weak = weak_from_this();
        state.timer = start_timer(loop_, weak, static_cast<uint64_t>(options.retry_delay_ms), [node_id](Run &run) {
            close_timer(run.nodes_[node_id]->timer);  // the wait is over; the attempt sets its own timeout
            run.attempt(node_id);
        });
        return;
    }
    state.status = NodeState::Status::failed;
    finish("failed", Json(json_pack("{s:s, s:s, s:s}", "error_code", outcome.error_code.c_str(), "message",
                                    outcome.error_message.c_str(), "node_id", node_id.c_str())));
}

void Run::release_successors(const std::string &node_id) {
    const NodeState &source = *nodes_[node_id];
    for (const auto *edge : outgoing_[node_id]) {
        if (done_) return;
        NodeState &target = *nodes_[edge->target];
        bool active = source.status == NodeState::Status::completed &&
                      (!source.branch || edge->source_handle == (*source.branch ? "true" : "false"));
        if (active) target.active_incoming++;
        if (--target.unresolved_incoming > 0) continue;
        if (target.active_incoming > 0) {
            launch(edge->target);
        } else {
            // Every way in was not taken: the node is skipped, and so is what only it leads to.
            target.status = NodeState::Status::skipped;
            NodeLog log;
            log.node_id = edge->target;
            log.node_type = target.node->type;
            log.status = "skipped";
            tell_finished(log, false);
            logs_.push_back(std::move(log));
            unsettled_--;
            release_successors(edge->target);
            if (!done_ && unsettled_ == 0) finish("completed", Json());
        }
    }
}

void Run::tell(const char *event, const std::string &data) {
    if (!done_ && options_.on_event) options_.on_event(event, data);
}

// The event's data written as text, in the order jansson would (what the stream shows), with
// the output dumped once for both the event and the node log.
void Run::tell_finished(NodeLog &log, bool retrying) {
    if (log.output && log.output_json.empty()) log.output_json = dump_json(log.output.get());
    if (done_ || !options_.on_event) return;
    std::string data = "{\"node_id\":" + json_quote(log.node_id) + ",\"node_type\":" + json_quote(log.node_type) +
                       ",\"status\":" + json_quote(log.status);
    if (log.status != "skipped")
        data += ",\"attempt\":" + std::to_string(log.attempt) + ",\"finished_at\":" + json_quote(log.finished_at) +
                ",\"duration_ms\":" + std::to_string(log.duration_ms);
    if (log.output) {
        // Large outputs stay in the node log: the stream says where to find them.
        if (log.output_json.size() <= kMaxEventOutputBytes)
            data += ",\"output\":" + log.output_json;
        else
            data += ",\"output_truncated\":true";
    }
    if (log.error) data += ",\"error\":" + dump_json(log.error.get());
    if (retrying) data += ",\"retrying\":true";
    options_.on_event("node_finished", data + "}");
}

void Run::cancel() {
    if (done_) return;
    finish("cancelled",
           Json(json_pack("{s:s, s:s}", "error_code", "STATE_CONFLICT", "message", "the execution was cancelled")));
}

void Run::finish(std::string status, Json error) {
    if (done_) return;
    done_ = true;
    auto keep = shared_from_this();  // the caller may drop its reference in `finished_`
    for (auto &[id, state] : nodes_) {
        if (state->task) {
            // Stopped with the run: what it spent still counts.
            NodeOutcome stopped = NodeOutcome::failure("RUN_STOPPED", "the run ended before the step");
            state->task->spent(stopped);
            prompt_tokens_ += stopped.prompt_tokens;
            completion_tokens_ += stopped.completion_tokens;
            if (json_array_size(stopped.model_calls.get()) > 0) {
                if (!model_calls_) model_calls_.reset(json_array());
                json_array_extend(model_calls_.get(), stopped.model_calls.get());
            }
            state->task->cancel();
        }
        state->task.reset();
        close_timer(state->timer);
    }
    close_timer(run_timer_);
    RunResult result;
    result.status = std::move(status);
    result.error = std::move(error);
    result.outputs.reset(new_json_object());
    for (const auto &node : workflow_->nodes) {
        const NodeState &state = *nodes_[node.id];
        if (node.type == "output" && state.status == NodeState::Status::completed)
            json_object_set(result.outputs.get(), node.id.c_str(), state.output ? state.output.get() : null_.get());
    }
    result.logs = std::move(logs_);
    result.prompt_tokens = prompt_tokens_;
    result.completion_tokens = completion_tokens_;
    result.model_calls = model_calls_ ? std::move(model_calls_) : Json(json_array());
    Finished finished = std::move(finished_);
    finished_ = nullptr;
    if (finished) finished(std::move(result));
}

}  // namespace flowgres::executor
