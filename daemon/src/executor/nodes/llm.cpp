// llm (README "The llm step"): the prompts rendered, then model calls through the routes the
// run was given, in this order: `model` (or the candidates, ordered by routingStrategy: budget
// = cheapest first, quality = best first), then `fallback_models`; each model through each
// provider that offers it (`provider` pins one). The first answer wins; every attempt is kept
// in the output. Tokens stream out as node_delta events while they arrive. With an
// output_schema the answer must be JSON fitting it: one repair request quotes the problems,
// then the step fails with LLM_OUTPUT_INVALID. Every answer is checked against the output
// safety rules as it streams and as a whole: a hit stops it, withholds what was not yet sent
// and fails the step with AI_OUTPUT_BLOCKED naming the category, never the text (no fallback:
// another model is not asked the same question). When every attempt failed, `fallback_text`
// (if given) is the answer. The output is {text, parsed?, model, provider, usage, attempts,
// fallback_used}; every call, failed ones included, is reported for metering.
#include <algorithm>
#include <chrono>
#include <optional>

#include "executor/nodes/nodes.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json_schema.hpp"
#include "flowgres/llm_openai.hpp"

namespace flowgres::executor::nodes {
namespace {

using Clock = std::chrono::steady_clock;

// Deltas go out as node_delta events at most every 50 ms (or 512 bytes): a token per event
// would be a stored row per token.
constexpr auto kDeltaInterval = std::chrono::milliseconds(50);
constexpr size_t kDeltaBytes = 512;
// What a call without max_tokens is assumed to answer at most, for the quota check.
constexpr long long kDefaultMaxTokens = 1024;

struct Attempt {
    std::string model;
    const llm::Route *route = nullptr;  // null: no provider offers the model
};

const char *text_config(const json_t *config, const char *key) {
    return json_string_value(json_object_get(config, key));
}

class LlmTask : public NodeTask {
public:
    LlmTask(NodeCall &call, NodeDone done)
        : loop_(call.loop), options_(call.options), node_id_(call.node.id), done_(std::move(done)),
          on_event_(call.options.on_event) {}

    ~LlmTask() override { *alive_ = false; }

    void cancel() override {
        cancelled_ = true;
        *alive_ = false;
        if (call_) call_->cancel();
    }

    // The call in flight, as far as it got (its usage estimated, flagged), and the calls before it.
    void spent(NodeOutcome &outcome) override {
        if (call_ && index_ < attempts_.size()) {
            llm::CallResult so_far = call_->progress();
            record(attempts_[index_], &so_far, outcome.error_code.empty() ? "RUN_STOPPED" : outcome.error_code,
                   "stopped while the answer came");
        }
        settle_usage(outcome);
    }

    // Renders the prompts and plans the attempts; false when it already finished.
    bool prepare(NodeCall &call) {
        const json_t *config = call.node.config.get();
        try {
            const char *system = text_config(config, "system_prompt");
            const char *user = text_config(config, "user_prompt");
            if (!user) user = text_config(config, "prompt");
            if (system && *system) {
                Json rendered(render_template(system, TemplateContext::text, call.roots));
                messages_.push_back({"system", json_string_value(rendered.get())});
            }
            Json rendered(render_template(user ? user : "", TemplateContext::text, call.roots));
            messages_.push_back({"user", json_string_value(rendered.get())});
            // Per-provider keys: the step's credential field, with {{secrets.NAME}}.
            TemplateRoot credential_roots = [&call](const std::string &root) -> const json_t * {
                if (root == "secrets") return call.options.secrets ? call.options.secrets->object.get() : nullptr;
                return call.roots(root);
            };
            const char *provider;
            json_t *key;
            json_object_foreach(json_object_get(config, "api_keys"), provider, key) {
                for (const auto &name : workflow::referenced_secrets(call.node)) {
                    const RunSecrets *opened = call.options.secrets.get();
                    if (opened && opened->unavailable.count(name)) {
                        const auto &[code, message] = opened->unavailable.at(name);
                        return fail_now(code, message);
                    }
                    if (!opened || !json_object_get(opened->object.get(), name.c_str()))
                        return fail_now("SECRET_NOT_FOUND", "the workspace has no secret named " + name);
                }
                Json value(render_template(json_string_value(key), TemplateContext::header_value, credential_roots));
                key_overrides_[provider] = json_string_value(value.get());
            }
        } catch (const Error &error) {
            return fail_now("NODE_FAILED", error.message());
        }
        if (const json_t *temperature = json_object_get(config, "temperature"); json_is_number(temperature))
            temperature_ = json_number_value(temperature);
        if (const json_t *max_tokens = json_object_get(config, "max_tokens"); json_is_integer(max_tokens))
            max_tokens_ = json_integer_value(max_tokens);
        if (const json_t *schema = json_object_get(config, "output_schema"); json_is_object(schema))
            schema_.reset(json_incref(const_cast<json_t *>(schema)));
        if (const char *fallback = text_config(config, "fallback_text")) fallback_text_ = fallback;
        // stream: false keeps an intermediate step's text out of the event streams (visitors').
        streams_ = !json_is_false(json_object_get(config, "stream"));
        plan(config);
        return true;
    }

    void next() {
        if (cancelled_) return;
        if (index_ >= attempts_.size()) return give_up();
        const Attempt &attempt = attempts_[index_];
        if (!attempt.route) {
            record_failure(attempt, "LLM_MODEL_UNAVAILABLE",
                           "no provider offers model " + attempt.model + " to this workspace, or it is switched off", 0);
            index_++;
            return next();
        }
        if (!attempt.route->key_error_code.empty()) {
            record_failure(attempt, attempt.route->key_error_code, attempt.route->key_error_message, 0);
            index_++;
            return next();
        }
        call_model(attempt, messages_);
    }

private:
    bool fail_now(const std::string &code, const std::string &message) {
        auto done = std::move(done_);
        done(NodeOutcome::failure(code, message));
        return false;
    }

    void plan(const json_t *config) {
        struct Wanted {
            std::string model, provider;
        };
        std::vector<Wanted> primary, fallbacks;
        auto add = [](std::vector<Wanted> &list, const json_t *entry) {
            const json_t *model = json_is_object(entry) ? json_object_get(entry, "model") : entry;
            const char *provider = json_is_object(entry) ? json_string_value(json_object_get(entry, "provider")) : nullptr;
            if (json_is_string(model)) list.push_back({json_string_value(model), provider ? provider : ""});
        };
        if (const json_t *model = json_object_get(config, "model")) {
            add(primary, model);
            if (const char *provider = text_config(config, "provider")) primary.back().provider = provider;
        }
        for (const char *key : {"model_candidates", "routing_models"}) {
            size_t index;
            json_t *entry;
            json_array_foreach(json_object_get(config, key), index, entry) add(primary, entry);
        }
        size_t index;
        json_t *entry;
        json_array_foreach(json_object_get(config, "fallback_models"), index, entry) add(fallbacks, entry);

        const llm::RunModels *models = options_.models.get();
        auto routes_of = [&](const Wanted &wanted) {
            std::vector<const llm::Route *> out;
            if (!models) return out;
            auto found = models->routes.find(wanted.model);
            if (found == models->routes.end()) return out;
            for (const auto &route : found->second)
                if (wanted.provider.empty() || route.provider == wanted.provider) out.push_back(&route);
            return out;
        };
        // routingStrategy orders the primary models by their best route: price or quality.
        if (const char *strategy = text_config(config, "routing_strategy")) {
            bool budget = std::string_view(strategy) == "budget";
            auto score = [&](const Wanted &wanted) -> std::optional<long long> {
                auto routes = routes_of(wanted);
                if (routes.empty()) return std::nullopt;
                const llm::Route &route = *routes.front();
                return budget ? route.input_micros_per_1m + route.output_micros_per_1m : -route.quality;
            };
            std::stable_sort(primary.begin(), primary.end(), [&](const Wanted &a, const Wanted &b) {
                auto sa = score(a), sb = score(b);
                if (!sa || !sb) return sa.has_value() && !sb.has_value();  // unknown models last
                return *sa < *sb;
            });
        }
        for (const auto *list : {&primary, &fallbacks})
            for (const Wanted &wanted : *list) {
                auto routes = routes_of(wanted);
                if (routes.empty()) attempts_.push_back({wanted.model, nullptr});
                for (const llm::Route *route : routes) attempts_.push_back({wanted.model, route});
            }
    }

    llm::Endpoint endpoint_of(const llm::Route &route) const {
        llm::Endpoint endpoint{route.provider, route.base_url, route.api_key};
        if (auto key = key_overrides_.find(route.provider); key != key_overrides_.end()) endpoint.api_key = key->second;
        return endpoint;
    }

    // The call's worst case is held against the quota and budget first (README "The llm
    // step"): a refusal fails the step with QUOTA_EXCEEDED before anything is sent.
    void call_model(const Attempt &attempt, const std::vector<llm::Message> &messages) {
        if (!options_.reserve_tokens) return send(attempt, messages);
        long long estimate = 0;
        for (const auto &message : messages) estimate += llm::estimate_tokens(message.content);
        estimate += max_tokens_.value_or(kDefaultMaxTokens);
        std::shared_ptr<bool> alive = alive_;
        options_.reserve_tokens(estimate, [this, alive, &attempt, messages](RunOptions::TokenRefusal refusal) {
            if (!*alive) return;
            if (!refusal) return send(attempt, messages);
            last_code_ = refusal->first;
            last_message_ = refusal->second;
            auto done = std::move(done_);
            NodeOutcome outcome = NodeOutcome::failure(refusal->first, refusal->second);
            outcome.output.reset(output_document(Json()));
            settle_usage(outcome);
            done(std::move(outcome));
        });
    }

    void send(const Attempt &attempt, const std::vector<llm::Message> &messages) {
        llm::ChatRequest request;
        request.model = attempt.model;
        request.messages = messages;
        request.temperature = temperature_;
        request.max_tokens = max_tokens_;
        if (schema_) request.output_schema = dump_json(schema_.get());
        llm::CallLimits limits = options_.llm_limits;
        limits.total_timeout_ms = std::min<uint64_t>(limits.total_timeout_ms, static_cast<uint64_t>(attempt.route->timeout_ms));
        prompt_estimate_ = 0;
        for (const auto &message : messages) prompt_estimate_ += llm::estimate_tokens(message.content);
        screen_.emplace(options_.safety);
        call_ = llm::chat(
            loop_, endpoint_of(*attempt.route), request, limits, options_.egress, options_.tls,
            [this](std::string_view delta) {
                if (std::string hit = screen_->feed(delta); !hit.empty()) {
                    blocked_category_ = hit;
                    pending_delta_.clear();  // the pieces that led up to it are withheld too
                    return false;
                }
                pending_delta_ += delta;
                if (pending_delta_.size() >= kDeltaBytes || Clock::now() - last_delta_ >= kDeltaInterval) flush_delta();
                return true;
            },
            [this](llm::CallResult result) { answered(std::move(result)); });
    }

    void flush_delta() {
        if (pending_delta_.empty()) return;
        if (on_event_ && !cancelled_ && streams_) {
            // Masked like every output: a model that repeats a key must not stream it.
            std::string text = options_.secrets ? secrets::mask_text(std::move(pending_delta_), options_.secrets->values)
                                                : std::move(pending_delta_);
            Json delta(json_pack("{s:s, s:s#, s:i}", "node_id", node_id_.c_str(), "delta", text.data(), text.size(),
                                 "attempt", static_cast<int>(attempt_log_size() + 1)));
            on_event_("node_delta", dump_json(delta.get()));
        }
        pending_delta_.clear();
        last_delta_ = Clock::now();
    }

    size_t attempt_log_size() const { return attempt_log_ ? json_array_size(attempt_log_.get()) : 0; }

    // The call's usage, as reported, else estimated (flagged): prompt from its size, one token
    // per streamed piece.
    llm::Usage usage_of(const llm::CallResult &result, bool &reported) const {
        reported = result.usage.has_value();
        if (reported) return *result.usage;
        if (result.streamed_deltas == 0 && !result.ok) return {};
        return {prompt_estimate_, result.streamed_deltas};
    }

    void record(const Attempt &attempt, const llm::CallResult *result, const std::string &error_code,
                const std::string &message) {
        bool reported = true;
        llm::Usage usage = result ? usage_of(*result, reported) : llm::Usage{};
        long long cost = attempt.route ? llm::cost_micros(*attempt.route, usage) : 0;
        usage_.prompt_tokens += usage.prompt_tokens;
        usage_.completion_tokens += usage.completion_tokens;
        cost_ += cost;
        if (!attempt_log_) attempt_log_.reset(json_array());
        json_t *entry = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I}", "model", attempt.model.c_str(), "provider",
                                  attempt.route ? attempt.route->provider.c_str() : "", "ok", error_code.empty(),
                                  "prompt_tokens", static_cast<json_int_t>(usage.prompt_tokens), "completion_tokens",
                                  static_cast<json_int_t>(usage.completion_tokens), "cost_micros",
                                  static_cast<json_int_t>(cost), "latency_ms",
                                  static_cast<json_int_t>(result ? result->latency_ms : 0));
        if (!error_code.empty()) {
            json_object_set_new(entry, "error_code", json_string(error_code.c_str()));
            json_object_set_new(entry, "message", json_string(message.c_str()));
        }
        if (result) json_object_set_new(entry, "attempts", json_integer(result->attempts));
        json_array_append_new(attempt_log_.get(), entry);
        if (!attempt.route || !result) return;  // nothing was sent: nothing to meter
        if (!model_calls_) model_calls_.reset(json_array());
        json_t *call = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:b}", "node_id", node_id_.c_str(), "provider",
                                 attempt.route->provider.c_str(), "model", attempt.model.c_str(), "prompt_tokens",
                                 static_cast<json_int_t>(usage.prompt_tokens), "completion_tokens",
                                 static_cast<json_int_t>(usage.completion_tokens), "cost_micros",
                                 static_cast<json_int_t>(cost), "latency_ms", static_cast<json_int_t>(result->latency_ms),
                                 "ok", error_code.empty(), "usage_reported", reported);
        if (!error_code.empty()) json_object_set_new(call, "error_code", json_string(error_code.c_str()));
        json_array_append_new(model_calls_.get(), call);
    }

    void record_failure(const Attempt &attempt, const std::string &code, const std::string &message,
                        const llm::CallResult *result) {
        last_code_ = code;
        last_message_ = message;
        record(attempt, result, code, message);
    }

    void answered(llm::CallResult result) {
        call_.reset();
        const Attempt &attempt = attempts_[index_];
        // The whole answer too: a pattern may span more than the streaming window.
        if (blocked_category_.empty() && result.ok && options_.safety)
            blocked_category_ = options_.safety->check(result.text);
        if (!blocked_category_.empty()) return finish_blocked(attempt, result);
        flush_delta();
        if (!result.ok) {
            record_failure(attempt, result.error_code, result.message, &result);
            if (repairing_) return finish_invalid();
            index_++;
            return next();
        }
        record(attempt, &result, "", "");
        text_ = std::move(result.text);
        if (!schema_) return succeed(attempt, Json());
        Json parsed = llm::json_in_answer(text_);
        std::vector<SchemaProblem> problems;
        if (!parsed)
            problems.push_back({"$", "is not JSON"});
        else
            problems = check_json_schema(parsed.get(), schema_.get());
        if (problems.empty()) return succeed(attempt, std::move(parsed));
        problems_ = describe_schema_problems(problems);
        if (repairing_) return finish_invalid();
        // One repair: the same model and provider, shown its answer and what was wrong with it.
        repairing_ = true;
        std::vector<llm::Message> repair = messages_;
        repair.push_back({"assistant", text_});
        repair.push_back({"user", "Your reply does not match the required JSON Schema: " + problems_ +
                                      ". Reply again with only the corrected JSON, nothing else."});
        call_model(attempt, repair);
    }

    void finish_blocked(const Attempt &attempt, llm::CallResult &result) {
        result.text.clear();
        record_failure(attempt, "AI_OUTPUT_BLOCKED", "category " + blocked_category_, &result);
        text_.clear();
        auto done = std::move(done_);
        NodeOutcome outcome = NodeOutcome::failure(
            "AI_OUTPUT_BLOCKED", "the answer was withheld: it broke an output safety rule (category " +
                                     blocked_category_ + ")");
        json_t *output = output_document(Json());
        json_object_set_new(output, "blocked", json_pack("{s:s}", "category", blocked_category_.c_str()));
        outcome.output.reset(output);
        settle_usage(outcome);
        done(std::move(outcome));
    }

    void finish_invalid() {
        auto done = std::move(done_);
        NodeOutcome outcome = NodeOutcome::failure(
            "LLM_OUTPUT_INVALID", "the model's answer does not fit output_schema after one repair: " + problems_);
        outcome.output.reset(output_document(Json()));
        settle_usage(outcome);
        done(std::move(outcome));
    }

    void succeed(const Attempt &attempt, Json parsed) {
        answered_by_ = &attempt;
        auto done = std::move(done_);
        NodeOutcome outcome = NodeOutcome::success(Json(output_document(std::move(parsed))));
        settle_usage(outcome);
        done(std::move(outcome));
    }

    void give_up() {
        auto done = std::move(done_);
        if (!fallback_text_) {
            NodeOutcome outcome = NodeOutcome::failure(
                last_code_.empty() ? "LLM_MODEL_UNAVAILABLE" : last_code_,
                last_code_.empty() ? "the step names no model a provider offers" : last_message_);
            outcome.output.reset(output_document(Json()));
            settle_usage(outcome);
            return done(std::move(outcome));
        }
        text_ = *fallback_text_;
        NodeOutcome outcome = NodeOutcome::success(Json(output_document(Json())));
        settle_usage(outcome);
        done(std::move(outcome));
    }

    json_t *output_document(Json parsed) {
        bool from_fallback_text = !answered_by_;
        json_t *output = json_pack(
            "{s:s#, s:o, s:o, s:{s:I, s:I, s:I, s:I}, s:o, s:b}", "text", text_.data(), text_.size(), "model",
            answered_by_ ? json_string(answered_by_->model.c_str()) : json_null(), "provider",
            answered_by_ ? json_string(answered_by_->route->provider.c_str()) : json_null(), "usage", "prompt_tokens",
            static_cast<json_int_t>(usage_.prompt_tokens), "completion_tokens",
            static_cast<json_int_t>(usage_.completion_tokens), "total_tokens",
            static_cast<json_int_t>(usage_.prompt_tokens + usage_.completion_tokens), "cost_micros",
            static_cast<json_int_t>(cost_), "attempts", attempt_log_ ? json_incref(attempt_log_.get()) : json_array(),
            "fallback_used", from_fallback_text || (answered_by_ && answered_by_ != &attempts_.front()));
        if (parsed) json_object_set_new(output, "parsed", parsed.release());
        if (from_fallback_text && fallback_text_) json_object_set_new(output, "fallback_text_used", json_true());
        return output;
    }

    void settle_usage(NodeOutcome &outcome) {
        outcome.prompt_tokens = usage_.prompt_tokens;
        outcome.completion_tokens = usage_.completion_tokens;
        outcome.model_calls = std::move(model_calls_);
    }

    uv_loop_t *loop_;
    const RunOptions &options_;
    std::string node_id_;
    NodeDone done_;
    std::function<void(const char *, const std::string &)> on_event_;
    std::vector<llm::Message> messages_;
    std::map<std::string, std::string> key_overrides_;
    std::optional<double> temperature_;
    std::optional<long long> max_tokens_;
    Json schema_;
    std::optional<std::string> fallback_text_;
    std::vector<Attempt> attempts_;
    size_t index_ = 0;
    std::unique_ptr<llm::ChatCall> call_;
    std::string pending_delta_;
    Clock::time_point last_delta_ = Clock::now();
    long long prompt_estimate_ = 0;
    llm::Usage usage_;
    long long cost_ = 0;
    Json attempt_log_, model_calls_;
    std::string text_, problems_, last_code_, last_message_;
    const Attempt *answered_by_ = nullptr;
    bool repairing_ = false;
    bool cancelled_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::optional<safety::Stream> screen_;
    bool streams_ = true;
    std::string blocked_category_;
};

}  // namespace

std::unique_ptr<NodeTask> run_llm(NodeCall &call, NodeDone done) {
    auto task = std::make_unique<LlmTask>(call, std::move(done));
    if (!task->prepare(call)) return nullptr;
    task->next();
    return task;
}

}  // namespace flowgres::executor::nodes
