// Runs (POST /api/v1/apps/{id}/runs, README "Workflows and executions"). A synchronous run is created and started
// as the caller (app_edit is checked there) in one statement and runs on this loop; an
// asynchronous one is queued and any daemon's worker claims it (execution_claim). While a run
// goes, a heartbeat tells the database it is alive (one refused with STATE_CONFLICT means it
// was cancelled through the API: the run stops), and its events are stored in batches for the
// event streams. At the end, the remaining events, the node logs and the outcome are recorded
// in one pipelined transaction: the run's one durable commit. A run whose daemon dies is
// failed by the maintenance worker (EXECUTION_ABANDONED). The daemon's own writes act as the
// operator: the run must be recorded even if the caller's key is revoked meanwhile.
#include "runs.hpp"

#include "flowgres/json.hpp"
#include "log.hpp"

namespace flowgres::daemon {

namespace {
// One event of a run, numbered as it is stored (execution_events).
struct RunEvent {
    long long id;
    const char *event;  // node_started, node_finished
    std::string data;   // a JSON object
};

// Batches of finished runs (run_recorder.hpp): up to this many runs each, this many being
// written at once per worker. One: runs that finish during a commit wait for it and go in the
// next batch together, which costs less per run than more, smaller batches (README
// "Performance": measured with bench/runtime.sh and bench/llm.sh).
constexpr size_t kRunsPerRecord = 64;
constexpr size_t kRecordsInFlight = 1;

constexpr size_t kEventsPerAppend = 1000;  // execution_events_append takes up to 2000
constexpr size_t kEventsPerRecord = 2000;  // executions_record takes up to 2000 a run

// Events [from, from + count) as execution_events_append's array.
std::string events_json(const std::vector<RunEvent> &events, size_t from, size_t count) {
    std::string out = "[";
    for (size_t i = from; i < events.size() && i < from + count; i++) {
        if (i > from) out += ',';
        out += "{\"sequence\":" + std::to_string(events[i].id) + ",\"event\":\"" + events[i].event +
               "\",\"data\":" + events[i].data + "}";
    }
    return out + "]";
}

// A deferred run's admitted row as executions_record and execution_store_admitted take it:
// only the members they write (the rest of admission's answer is the daemon's, and every
// byte of a record is read again by the database).
Json admitted_row(const json_t *execution) {
    Json admitted(new_json_object());
    for (const char *member :
         {"id", "workspace_id", "app_id", "version_id", "session_id", "trigger", "triggered_by", "inputs", "claimed_by",
         "started_at"})
        if (json_t *value = json_object_get(execution, member)) json_object_set(admitted.get(), member, value);
    return admitted;
}

}  // namespace

struct Runs::ActiveRun {
    Runs *runs = nullptr;
    std::string execution_id;
    Json claimed;  // the execution as claimed (status running): a 202's body, if it comes to that
    std::shared_ptr<executor::Run> run;
    std::shared_ptr<Call> waiting;  // the synchronous request still waiting, if any
    uv_timer_t *heartbeat = nullptr;
    uv_timer_t *wait_limit = nullptr;
    bool cancelled_by_user = false;
    bool runtime = false;  // a visitor's run: answered with what a visitor sees of it
    bool holds_tokens = false;  // a model call's tokens were held: released when it is recorded
    // Its events (GET …/events), numbered from 1, not yet stored: they go at the next flush,
    // or at the end before execution_finished.
    std::vector<RunEvent> unstored;
    long long next_event_id = 1;
    bool storing = false;
    // A flush of its events began: others may be streaming them from the table, so the rest
    // go there too. Until then, the end folds events and node logs into one trail row.
    bool flushed = false;
    uv_timer_t *flush_timer = nullptr;  // every event_flush_ms: store what waits
    // A run admitted without its row (runtime_admit's or execution_admit_trial's "deferred"):
    // the row as admitted, written with the outcome (executions_record's `admitted`), or stored
    // running (execution_store_admitted) once the run outlives its first heartbeat (a trial
    // run: its first event flush) or is answered 202. Empty once written. Nobody can stream it
    // meanwhile, so its events wait for the end.
    std::string admitted;
    bool storing_admitted = false;
    std::vector<std::function<void()>> after_stored;  // what waits for that store to end
};

namespace {
// Loop timers of an ActiveRun (data points at it); closed, and freed, when the run ends,
// before the ActiveRun goes.
uv_timer_t *new_timer(uv_loop_t *loop, void *data) {
    auto *timer = new uv_timer_t;
    uv_timer_init(loop, timer);
    timer->data = data;
    return timer;
}
void close_timer(uv_timer_t *&timer) {
    if (!timer) return;
    uv_timer_stop(timer);
    uv_close(reinterpret_cast<uv_handle_t *>(timer),
             [](uv_handle_t *handle) { delete reinterpret_cast<uv_timer_t *>(handle); });
    timer = nullptr;
}
}  // namespace

Runs::Runs(WorkerContext &worker, RunPreparation &preparation, Databases &databases)
    : worker_(worker),
      preparation_(preparation),
      databases_(databases),
      recorder_(worker.pool, worker.metrics, kRunsPerRecord, kRecordsInFlight) {
    const Config &config = worker.config;
    base_options_.timeout_ms = config.run_timeout_ms;
    base_options_.egress = worker.environment.egress;
    base_options_.tls = worker.environment.tls;
    base_options_.max_http_response_bytes = static_cast<size_t>(config.max_http_response_bytes);
    base_options_.max_http_header_bytes = static_cast<size_t>(config.max_http_header_bytes);
    base_options_.http_connect_timeout_ms = static_cast<uint64_t>(config.http_connect_timeout_ms);
    base_options_.http_first_byte_timeout_ms = static_cast<uint64_t>(config.http_first_byte_timeout_ms);
    base_options_.http_idle_timeout_ms = static_cast<uint64_t>(config.http_idle_timeout_ms);
    base_options_.llm_limits = worker.llm_limits;
}

Runs::~Runs() = default;

void Runs::start() {
    started_ = true;
    uv_timer_init(worker_.loop, &claim_timer_);
    claim_timer_.data = this;
    uv_timer_start(
        &claim_timer_, [](uv_timer_t *timer) { static_cast<Runs *>(timer->data)->claim_queued(); }, 0, 1000);
}

std::shared_ptr<const HeldForRuns> Runs::held_for(const std::string &key) const {
    auto found = held_for_runs_.find(key);
    return found == held_for_runs_.end() ? nullptr : found->second;
}

void Runs::note_runs() { worker_.metrics.set_active_runs(static_cast<int64_t>(active_runs_.size())); }

void Runs::run_trial(std::shared_ptr<Call> call) {
    bool async = http::asks_async(call->request);
    std::string held_key;  // a synchronous run's app, for held_for
    std::shared_ptr<const HeldForRuns> held;
    std::vector<pg::Statement> statements;
    statements.push_back(worker_.actor_statement(*call));
    if (async) {
        // Queued, durably (the caller is told it exists): whichever daemon claims first runs it,
        // and it outlives this one.
        statements.push_back(pg::Statement{
            "select flowgres.execution_create($1::uuid, $2::jsonb, $3::uuid, 'trial', true)::text", call->arguments});
    } else {
        // Run here, where the caller waits: admitted as the caller (their permission, the run
        // cap, the quota) for this daemon (which only the daemon's role may say) without a row:
        // its row, usage and audit rows are written once, with its outcome (a run whose model
        // calls hold tokens is created running instead, committed without waiting for the
        // disk; the outcome's durable commit makes it durable). The version's workflow is left
        // out when it is the one this worker holds for the app.
        SqlArguments admitted = call->arguments;
        admitted.push_back(daemon_name());
        held_key = "trial:" + call->arguments.at(0).value_or("");
        held = held_for(held_key);
        admitted.push_back(held ? std::optional<std::string>(held->version_id) : std::nullopt);
        statements.push_back(pg::Statement{
            "select flowgres.execution_admit_trial($1::uuid, $2::jsonb, $3::uuid, $4, $5::uuid)::text",
            std::move(admitted)});
    }
    worker_.pool.run(std::move(statements), [this, call, async, held_key, held](pg::JobResult &&created) {
        if (created.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(call, created);
        worker_.note_key_use(*call, created.values[0]);
        if (async) return worker_.finish(call, success_response(202, created.values[1].value_or("null"), call->trace));
        launch(parse_json(created.values.back().value_or("{}"), "execution"), call, false, held_key, held);
    });
}

void Runs::claim_queued() {
    if (!started_) return;
    queue_may_wait_ = true;
    if (claiming_) {
        claim_again_ = true;
        return;
    }
    if (active_runs_.size() >= static_cast<size_t>(worker_.config.max_concurrent_runs)) return;
    claiming_ = true;
    claim_again_ = false;
    std::vector<pg::Statement> claim;
    claim.push_back(pg::Statement{kActAsOperator, {}});
    claim.push_back(pg::Statement{"select flowgres.execution_claim($1)::text", {daemon_name()}});
    worker_.pool.run(std::move(claim), [this](pg::JobResult &&claimed) {
        claiming_ = false;
        bool got = claimed.outcome == pg::JobResult::Outcome::ok && claimed.values[1];
        if (got) launch(parse_json(*claimed.values[1], "execution"), nullptr);
        if (got || claim_again_)
            claim_queued();  // there may be more waiting
        else if (claimed.outcome == pg::JobResult::Outcome::ok)
            queue_may_wait_ = false;
    });
}

void Runs::launch(Json claimed, std::shared_ptr<Call> waiting, bool runtime, const std::string &held_key,
                  std::shared_ptr<const HeldForRuns> held) {
    std::string execution_id = json_string_value(json_object_get(claimed.get(), "id"));
    const char *version_id = json_string_value(json_object_get(claimed.get(), "version_id"));
    // The workflow as sent, or (not sent) the one the admission was told this worker has.
    std::shared_ptr<const workflow::Workflow> workflow;
    const json_t *sent = json_object_get(claimed.get(), "workflow");
    if (sent) {
        workflow::Problems problems;
        workflow = std::make_shared<const workflow::Workflow>(workflow::parse_workflow(sent, problems));
    } else if (held && version_id && held->version_id == version_id) {
        workflow = held->workflow;
    } else {
        log_line(LogLevel::error, "an admitted run came without its workflow", {{"execution_id", execution_id}});
        if (waiting) worker_.finish_error(waiting, ErrorCode::INTERNAL_ERROR, "the run could not be started");
        return record_unstarted(claimed, ErrorCode::INTERNAL_ERROR);
    }
    Json inputs(json_incref(json_object_get(claimed.get(), "inputs")));
    // A visitor's run comes with what it needs before it starts (runtime_admit) or its key,
    // and with whether its model calls must hold tokens first.
    Json preparation(json_incref(json_object_get(claimed.get(), "preparation")));
    std::string preparation_key;
    if (const char *key = json_string_value(json_object_get(claimed.get(), "preparation_key"))) preparation_key = key;
    bool token_holds = !json_is_false(json_object_get(claimed.get(), "token_holds"));
    if (!held_key.empty() && sent) {
        // Kept for the app's next admissions (a few apps per worker; forgotten all at once
        // past a bound, as a cache may be).
        auto kept = std::make_shared<HeldForRuns>(held ? *held : HeldForRuns{});
        kept->version_id = version_id ? version_id : "";
        kept->workflow = workflow;
        if (held_for_runs_.size() >= 4096) held_for_runs_.clear();
        held_for_runs_[held_key] = kept;
    }
    for (const char *member : {"workflow", "preparation", "preparation_key", "token_holds"})
        json_object_del(claimed.get(), member);
    bool deferred = json_is_true(json_object_get(claimed.get(), "deferred"));
    json_object_del(claimed.get(), "deferred");

    auto active = std::make_shared<ActiveRun>();
    active->runs = this;
    active->execution_id = execution_id;
    active->runtime = runtime;
    if (deferred) active->admitted = dump_json(admitted_row(claimed.get()).get());
    active->claimed = Json(json_incref(claimed.get()));
    if (runtime) visitor_runs_++;
    active_runs_[execution_id] = active;
    note_runs();
    if (waiting) {
        active->waiting = waiting;
        // Past the wait limit the caller gets the execution as it is, still running (202).
        active->wait_limit = new_timer(worker_.loop, active.get());
        uv_timer_start(
            active->wait_limit,
            [](uv_timer_t *timer) {
                auto *self = static_cast<ActiveRun *>(timer->data);
                // A deferred run is stored first: the caller will ask for it by its id.
                self->runs->store_admitted(self->execution_id, [self] {
                    if (auto waiting = std::move(self->waiting); waiting && !waiting->answered)
                        self->runs->worker_.finish(
                            waiting, success_response(202,
                                                      self->runtime ? runtime_view(self->claimed.get())
                                                                    : dump_json(self->claimed.get()),
                                                      waiting->trace));
                });
            },
            static_cast<uint64_t>(worker_.config.run_wait_ms), 0);
    }
    auto interval = static_cast<uint64_t>(worker_.config.execution_heartbeat_interval_ms);
    active->heartbeat = new_timer(worker_.loop, active.get());
    uv_timer_start(
        active->heartbeat,
        [](uv_timer_t *timer) {
            auto *self = static_cast<ActiveRun *>(timer->data);
            Runs *runs = self->runs;
            std::string id = self->execution_id;
            // A deferred run's first beat stores it: running, visible, cancellable.
            if (!self->admitted.empty() || self->storing_admitted) return runs->store_admitted(id, [] {});
            std::vector<pg::Statement> beat;
            beat.push_back(pg::Statement{kOperatorNoDiskWait, {}});
            beat.push_back(pg::Statement{"select flowgres.execution_heartbeat($1::uuid)::text", {id}});
            runs->worker_.pool.run(std::move(beat), [runs, id](pg::JobResult &&result) {
                auto found = runs->active_runs_.find(id);
                if (found == runs->active_runs_.end()) return;
                // The execution left "running" behind our back: it was cancelled. Stop.
                if (result.outcome == pg::JobResult::Outcome::sql_error && result.sqlstate == "FG060") {
                    found->second->cancelled_by_user = true;
                    if (found->second->run) found->second->run->cancel();  // else it never starts
                }
            });
        },
        interval, interval);

    // Other workers' and daemons' streams see events once stored: batched, every event_flush_ms.
    auto flush_every = static_cast<uint64_t>(worker_.config.event_flush_ms);
    active->flush_timer = new_timer(worker_.loop, active.get());
    uv_timer_start(
        active->flush_timer,
        [](uv_timer_t *timer) {
            auto *self = static_cast<ActiveRun *>(timer->data);
            self->runs->flush_events(self->execution_id);
        },
        flush_every, flush_every);

    executor::RunOptions options = base_options_;
    if (const char *workspace_id = json_string_value(json_object_get(claimed.get(), "workspace_id")))
        options.database =
            databases_.for_run(workspace_id, execution_id, [this, execution_id](std::function<void()> then) {
                store_admitted(execution_id, std::move(then));
            });
    std::weak_ptr<ActiveRun> weak_active = active;
    // Unset: the calls go unchecked, nothing limits this workspace's tokens.
    if (token_holds) options.reserve_tokens = token_reserver(execution_id, active);
    options.on_event = [weak_active](const char *event, const std::string &data) {
        if (auto running = weak_active.lock())
            running->unstored.push_back(RunEvent{running->next_event_id++, event, jsonb_safe(data)});
    };
    // Started once its secrets are open (at once when it uses none).
    auto inputs_held = std::make_shared<Json>(std::move(inputs));
    auto begin = [this, execution_id, workflow, inputs_held, options](std::shared_ptr<const executor::RunSecrets> secrets,
                                                                       std::shared_ptr<const llm::RunModels> models,
                                                                       std::shared_ptr<const safety::RuleSet> rules) {
        auto found = active_runs_.find(execution_id);
        if (found == active_runs_.end()) return;
        std::shared_ptr<ActiveRun> active = found->second;
        if (active->cancelled_by_user) {  // cancelled while its secrets were read
            executor::RunResult cancelled;
            cancelled.status = "cancelled";
            return finish_run(execution_id, std::move(cancelled));
        }
        executor::RunOptions run_options = options;
        run_options.secrets = std::move(secrets);
        run_options.models = std::move(models);
        run_options.safety = std::move(rules);
        auto run = executor::Run::start(
            worker_.loop, workflow, std::move(*inputs_held), std::move(run_options),
            [this, execution_id](executor::RunResult &&result) { finish_run(execution_id, std::move(result)); });
        if (active_runs_.count(execution_id)) active->run = std::move(run);  // still running
    };
    std::set<std::string> secret_names = workflow::referenced_secrets(*workflow);
    std::set<std::string> model_names = workflow::referenced_models(*workflow);
    const char *workspace_id = json_string_value(json_object_get(claimed.get(), "workspace_id"));
    if ((secret_names.empty() && model_names.empty()) || !workspace_id) return begin(nullptr, nullptr, nullptr);
    if (!preparation && held && held->preparation && !preparation_key.empty() && held->preparation_key == preparation_key)
        return begin(held->preparation->secrets, held->preparation->models, held->preparation->rules);
    if (preparation) {
        // Opened once per key and worker: kept with the app's workflow for its next runs.
        auto remember = [this, held_key, preparation_key, begin](std::shared_ptr<const executor::RunSecrets> secrets,
                                                                  std::shared_ptr<const llm::RunModels> models,
                                                                  std::shared_ptr<const safety::RuleSet> rules) {
            auto found = held_for_runs_.find(held_key);
            if (!held_key.empty() && !preparation_key.empty() && found != held_for_runs_.end()) {
                auto kept = std::make_shared<HeldForRuns>(*found->second);
                kept->preparation_key = preparation_key;
                kept->preparation = std::make_shared<const OpenedPreparation>(OpenedPreparation{secrets, models, rules});
                found->second = kept;
            }
            begin(std::move(secrets), std::move(models), std::move(rules));
        };
        return preparation_.open(workspace_id, secret_names, model_names, preparation.get(), remember);
    }
    preparation_.prepare(workspace_id, secret_names, model_names, std::move(begin));
}

executor::RunOptions::TokenReserver Runs::token_reserver(const std::string &execution_id,
                                                           const std::shared_ptr<ActiveRun> &active) {
    std::weak_ptr<ActiveRun> weak_active = active;
    return [this, weak_active, execution_id](long long tokens, std::function<void(executor::RunOptions::TokenRefusal)> done) {
        if (auto running = weak_active.lock()) running->holds_tokens = true;
        std::vector<pg::Statement> statements;
        statements.push_back(pg::Statement{kActAsOperator, {}});
        statements.push_back(pg::Statement{"select flowgres.llm_tokens_reserve($1::uuid, $2::bigint)::text",
                                           {execution_id, std::to_string(tokens)}});
        worker_.pool.run(std::move(statements), [done = std::move(done)](pg::JobResult &&result) {
            if (result.outcome == pg::JobResult::Outcome::ok) return done(std::nullopt);
            if (result.outcome == pg::JobResult::Outcome::sql_error && result.sqlstate == "FG133")
                return done(std::make_pair(std::string("QUOTA_EXCEEDED"), result.message));
            done(std::make_pair(std::string("DB_UNAVAILABLE"), std::string("the token quota could not be checked")));
        });
    };
}

void Runs::finish_run(const std::string &execution_id, executor::RunResult &&result) {
    auto found = active_runs_.find(execution_id);
    if (found == active_runs_.end()) return;
    std::shared_ptr<ActiveRun> active = found->second;
    if (active->storing_admitted) {
        // Its row is being stored: it ends once that is done, either way (still active meanwhile).
        auto ended = std::make_shared<executor::RunResult>(std::move(result));
        active->after_stored.push_back([this, execution_id, ended] { finish_run(execution_id, std::move(*ended)); });
        return;
    }
    active_runs_.erase(found);
    if (active->runtime) visitor_runs_--;
    note_runs();
    close_timer(active->heartbeat);
    close_timer(active->wait_limit);
    close_timer(active->flush_timer);

    // The run as executions_record takes it. Events not yet confirmed stored go with it (a
    // batch still in flight is sent again; the table skips what it has), so execution_finished,
    // written when its outcome is, follows them all.
    Json run(new_json_object());
    json_object_set_new(run.get(), "execution_id", json_string(execution_id.c_str()));
    if (result.status == "completed") {
        json_object_set_new(run.get(), "status", json_string("completed"));
        json_object_set(run.get(), "outputs", result.outputs.get() ? result.outputs.get() : json_null());
    } else if (result.status == "failed") {
        json_object_set_new(run.get(), "status", json_string("failed"));
        if (json_is_object(result.error.get()))
            json_object_set(run.get(), "error", result.error.get());
        else
            json_object_set_new(run.get(), "error", json_pack("{s:s, s:s}", "error_code", "INTERNAL_ERROR", "message",
                                                              "the run failed without saying why"));
    } else if (!active->cancelled_by_user) {
        // Cancelled here (the daemon is shutting down), not through the API: record why.
        json_object_set_new(run.get(), "status", json_string("failed"));
        json_object_set_new(run.get(), "error",
                            json_pack("{s:s, s:s}", "error_code", "SHUTTING_DOWN", "message", "the daemon running it stopped"));
    } else {
        json_object_set_new(run.get(), "status", json_string("cancelled"));  // its logs, the state is the API's
    }
    json_object_set_new(run.get(), "prompt_tokens", json_integer(result.prompt_tokens));
    json_object_set_new(run.get(), "completion_tokens", json_integer(result.completion_tokens));
    if (active->holds_tokens) json_object_set_new(run.get(), "release_tokens", json_true());
    if (json_array_size(result.model_calls.get()) > 0) json_object_set(run.get(), "model_calls", result.model_calls.get());
    if (!active->flushed) json_object_set_new(run.get(), "fold", json_true());
    // The execution as its caller is shown it: a visitor's view, or a trial run's with its
    // node logs.
    json_object_set_new(run.get(), "view", json_string(active->runtime ? "visitor" : "full"));
    std::string text = dump_json(run.get());
    text.pop_back();  // events and logs are spliced in as the JSON they already are
    if (!active->unstored.empty())
        text += ",\"events\":" + events_json(active->unstored, 0, kEventsPerRecord);
    if (!result.logs.empty()) {
        std::string logs = "[";
        for (const auto &log : result.logs) logs += (logs.size() > 1 ? "," : "") + log.to_json();
        text += ",\"logs\":" + logs + "]";
    }
    if (!active->admitted.empty()) text += ",\"admitted\":" + active->admitted;
    text = jsonb_safe(std::move(text) + "}");  // a NUL in a step's data must not make the run unrecordable
    if (active->unstored.size() > kEventsPerRecord)
        log_line(LogLevel::warn, "run events dropped: more were waiting than one record takes",
                 {{"execution_id", execution_id}, {"dropped", std::to_string(active->unstored.size() - kEventsPerRecord), true}});

    std::shared_ptr<Call> waiting = std::move(active->waiting);
    if (queue_may_wait_) claim_queued();  // room for one more queued run
    bool runtime = active->runtime;
    bool holds_tokens = active->holds_tokens;
    std::string admitted = active->admitted;
    recorder_.record(std::move(text), [this, waiting, execution_id, runtime, holds_tokens,
                                       admitted = std::move(admitted)](pg::JobResult &&recorded) {
        if (recorded.outcome != pg::JobResult::Outcome::ok)
            log_line(LogLevel::error, "could not record a finished run",
                     {{"execution_id", execution_id}, {"sqlstate", recorded.sqlstate}, {"error", recorded.message}});
        if (recorded.outcome == pg::JobResult::Outcome::sql_error &&
            recorded.sqlstate == error_info(ErrorCode::EXECUTION_NOT_FOUND).sqlstate) {
            // Its creation was committed without waiting for the disk, and the database went
            // down (immediate shutdown, a crash) before that commit was: nothing of the run is
            // stored or billed, so the caller is told to run it again, not that it is unknown.
            if (waiting && !waiting->answered)
                worker_.finish_error(waiting, ErrorCode::DB_UNAVAILABLE,
                                     "the database restarted before the run was stored: nothing was kept or billed, run it again");
            return;
        }
        if (recorded.outcome == pg::JobResult::Outcome::sql_error &&
            (recorded.sqlstate.rfind("22", 0) == 0 || recorded.sqlstate.rfind("23", 0) == 0)) {
            // The database refuses what the run produced: record that it failed, and why,
            // rather than leave it running until the maintenance worker calls it abandoned.
            Json failed(json_pack("{s:s, s:s, s:{s:s, s:s}, s:b, s:s}", "execution_id", execution_id.c_str(), "status",
                                  "failed", "error", "error_code", "INTERNAL_ERROR", "message",
                                  "the run's results could not be stored", "release_tokens", holds_tokens, "view",
                                  runtime ? "visitor" : "full"));
            if (!admitted.empty()) json_object_set_new(failed.get(), "admitted", parse_json(admitted, "admitted").release());
            recorder_.record(dump_json(failed.get()), [this, waiting](pg::JobResult &&stored) {
                answer_recorded(waiting, stored);
            });
            return;
        }
        answer_recorded(waiting, recorded);
    });
}

void Runs::record_unstarted(const Json &execution, ErrorCode code) {
    const ErrorInfo &info = error_info(code);
    Json run(json_pack("{s:O, s:s, s:{s:s#, s:s#}, s:s}", "execution_id", json_object_get(execution.get(), "id"), "status",
                       "failed", "error", "error_code", info.name.data(), static_cast<int>(info.name.size()), "message",
                       info.summary.data(), static_cast<int>(info.summary.size()), "view", "visitor"));
    if (json_is_true(json_object_get(execution.get(), "deferred")))  // its row is written with the outcome
        json_object_set_new(run.get(), "admitted", admitted_row(execution.get()).release());
    std::string id = json_string_value(json_object_get(execution.get(), "id"));
    recorder_.record(dump_json(run.get()), [id](pg::JobResult &&recorded) {
        if (recorded.outcome != pg::JobResult::Outcome::ok)
            log_line(LogLevel::error, "could not record a run that never started",
                     {{"execution_id", id}, {"sqlstate", recorded.sqlstate}, {"error", recorded.message}});
    });
}

void Runs::answer_recorded(const std::shared_ptr<Call> &waiting, const pg::JobResult &recorded) {
    if (!waiting || waiting->answered) return;
    if (recorded.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(waiting, recorded);
    // The record answers with the view asked for: a visitor's, or the full one.
    worker_.finish(waiting, success_response(200, recorded.values.back().value_or("null"), waiting->trace));
}

void Runs::store_admitted(const std::string &execution_id, std::function<void()> then) {
    auto found = active_runs_.find(execution_id);
    if (found == active_runs_.end()) return then();
    std::shared_ptr<ActiveRun> active = found->second;
    if (active->storing_admitted) return active->after_stored.push_back(std::move(then));
    if (active->admitted.empty()) return then();
    active->storing_admitted = true;
    active->after_stored.push_back(std::move(then));
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kOperatorNoDiskWait, {}});
    statements.push_back(pg::Statement{"select flowgres.execution_store_admitted($1::json)::text", {active->admitted}});
    worker_.pool.run(std::move(statements), [active, execution_id](pg::JobResult &&result) {
        active->storing_admitted = false;
        // Not stored (the database is away): it stays deferred and the outcome writes its row.
        if (result.outcome == pg::JobResult::Outcome::ok) active->admitted.clear();
        else
            log_line(LogLevel::warn, "could not store a running run",
                     {{"execution_id", execution_id}, {"sqlstate", result.sqlstate}, {"error", result.message}});
        auto waiting = std::move(active->after_stored);
        active->after_stored.clear();
        for (auto &next : waiting) next();
    });
}

void Runs::flush_events(const std::string &execution_id) {
    auto found = active_runs_.find(execution_id);
    if (found == active_runs_.end()) return;
    ActiveRun &active = *found->second;
    // A trial run admitted without its row is stored at its first flush: from then on it is
    // listed, and its events can be followed live, as before it was admitted that way (a
    // visitor's run, which nobody lists, waits for its first heartbeat).
    if (!active.runtime && !active.admitted.empty() && !active.storing_admitted)
        return store_admitted(execution_id, [this, execution_id] {
            auto stored = active_runs_.find(execution_id);
            if (stored != active_runs_.end() && stored->second->admitted.empty()) flush_events(execution_id);
        });
    if (active.storing || active.unstored.empty() || !active.admitted.empty() || active.storing_admitted) return;
    active.storing = true;
    active.flushed = true;
    size_t count = std::min(active.unstored.size(), kEventsPerAppend);
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kOperatorNoDiskWait, {}});
    statements.push_back(pg::Statement{"select flowgres.execution_events_append($1::uuid, $2::jsonb)::text",
                                       {execution_id, events_json(active.unstored, 0, count)}});
    worker_.pool.run(std::move(statements), [this, execution_id, count](pg::JobResult &&result) {
        auto found = active_runs_.find(execution_id);
        if (found == active_runs_.end()) return;  // finished meanwhile: the end wrote them all
        ActiveRun &active = *found->second;
        active.storing = false;
        // On failure they stay and go with the next flush or the end, unless the database
        // refused the data itself (class 22/23): that batch would fail forever, so it goes.
        bool refused = result.outcome == pg::JobResult::Outcome::sql_error &&
                       (result.sqlstate.rfind("22", 0) == 0 || result.sqlstate.rfind("23", 0) == 0);
        if (refused)
            log_line(LogLevel::error, "run events dropped: the database refuses them",
                     {{"execution_id", execution_id}, {"sqlstate", result.sqlstate}, {"error", result.message}});
        if (result.outcome == pg::JobResult::Outcome::ok || refused)
            active.unstored.erase(active.unstored.begin(), active.unstored.begin() + static_cast<long>(count));
    });
}

void Runs::stop() {
    if (!started_) return;
    started_ = false;  // claims no more
    uv_close(reinterpret_cast<uv_handle_t *>(&claim_timer_), nullptr);
    // Recorded as failed (SHUTTING_DOWN) before the pool closes.
    std::vector<std::shared_ptr<ActiveRun>> runs;
    for (auto &[id, active] : active_runs_) runs.push_back(active);
    for (auto &active : runs)
        if (active->run) active->run->cancel();
}

// What a visitor sees of a finished (or still running) execution: no node logs, no inputs.
std::string runtime_view(const json_t *execution) {
    json_t *outputs = json_object_get(execution, "outputs");
    json_t *error = json_object_get(execution, "error");
    Json view(json_pack("{s:O, s:O, s:O, s:O}", "execution_id", json_object_get(execution, "id"), "status",
                        json_object_get(execution, "status"), "outputs", outputs ? outputs : json_null(), "error",
                        error ? error : json_null()));
    return dump_json(view.get());
}

}  // namespace flowgres::daemon
