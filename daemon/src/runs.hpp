// Workflow runs executed on this worker (runs.cpp says how a run goes): trial runs
// (POST /api/v1/apps/{id}/runs), queued runs any daemon may claim, and visitors' runs the
// public runtime admitted. Each is recorded when it ends, in batches (run_recorder.hpp).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "databases.hpp"
#include "executor/engine.hpp"
#include "run_preparation.hpp"
#include "run_recorder.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

// What a visitor sees of an execution: id, status, outputs, error (no node logs, no inputs);
// executions_record's "visitor" view is the same.
std::string runtime_view(const json_t *execution);

// What this worker keeps of a visitor app's admission answers: its version's workflow, parsed,
// and its run preparation, opened, by key. The next admission says it has them
// ("have_version", "have_preparation") and is not sent them again.
struct OpenedPreparation {
    std::shared_ptr<const executor::RunSecrets> secrets;
    std::shared_ptr<const llm::RunModels> models;
    std::shared_ptr<const safety::RuleSet> rules;
};
struct HeldForRuns {
    std::string version_id;
    std::shared_ptr<const workflow::Workflow> workflow;
    std::string preparation_key;
    std::shared_ptr<const OpenedPreparation> preparation;
};

class Runs {
public:
    Runs(WorkerContext &worker, RunPreparation &preparation, Databases &databases);
    ~Runs();

    // The one-second sweep for queued runs (a notification may have been missed).
    void start();
    // Runs going on are cancelled and recorded as failed (SHUTTING_DOWN); nothing more is claimed.
    void stop();

    void run_trial(std::shared_ptr<Call> call);
    // Takes queued executions (any daemon's) while this worker has room for more runs
    // (NOTIFY flowgres_executions, the sweep, a run that ends).
    void claim_queued();
    // Runs a claimed or admitted execution ({…execution, "workflow"}) here; `waiting` is
    // answered when it ends (or at the wait limit), if given. `runtime`: a visitor's run,
    // answered with runtime_view; `held_key` names its app for held_for, and `held` is what
    // the admission was told this worker has.
    void launch(Json claimed, std::shared_ptr<Call> waiting, bool runtime = false, const std::string &held_key = {},
                std::shared_ptr<const HeldForRuns> held = nullptr);
    // An admitted execution that will not run (its caller left): recorded as failed with `code`.
    void record_unstarted(const Json &execution, ErrorCode code);

    // What this worker keeps for the app "workspace/app" (a visitor's runs) or "trial:<app id>"
    // (trial runs) (null: nothing).
    std::shared_ptr<const HeldForRuns> held_for(const std::string &key) const;
    // Visitors' runs going on here (the runtime sheds executes past max_in_flight).
    int64_t visitor_runs() const { return visitor_runs_; }

private:
    struct ActiveRun;

    void finish_run(const std::string &execution_id, executor::RunResult &&result);
    // Holds a model call's tokens (llm_tokens_reserve) before it is sent.
    executor::RunOptions::TokenReserver token_reserver(const std::string &execution_id,
                                                       const std::shared_ptr<ActiveRun> &active);
    // A deferred run's row stored, running (execution_store_admitted); `then` runs when that
    // ends, stored or not (at once when there is nothing to store).
    void store_admitted(const std::string &execution_id, std::function<void()> then);
    // The waiting caller of a run, if any, once its recording is done.
    void answer_recorded(const std::shared_ptr<Call> &waiting, const pg::JobResult &recorded);
    void flush_events(const std::string &execution_id);
    // Tells the metrics how many runs this worker has going.
    void note_runs();

    WorkerContext &worker_;
    RunPreparation &preparation_;
    Databases &databases_;
    RunRecorder recorder_;  // finished runs, recorded in batches
    executor::RunOptions base_options_;  // every run's, from the configuration
    std::map<std::string, std::shared_ptr<ActiveRun>> active_runs_;
    std::map<std::string, std::shared_ptr<const HeldForRuns>> held_for_runs_;  // held_for's key →
    int64_t visitor_runs_ = 0;
    uv_timer_t claim_timer_{};
    bool started_ = false;
    bool claiming_ = false;
    bool claim_again_ = false;
    // Whether queued runs may be waiting for this worker: false once a claim found none, true
    // again with a notification, the one-second sweep, or a claim put off for lack of room. A
    // finished run claims the next only then, not with a round trip per run.
    bool queue_may_wait_ = true;
};

}  // namespace flowgres::daemon
