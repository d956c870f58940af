// Finished runs are recorded in batches (README "Performance"): each worker hands its finished
// runs to one RunRecorder, which stores many of them with one call to
// flowgres.executions_record, in one transaction and one durable commit, and answers each run
// once that commit is done.
//
// Batches form by themselves (group_commit.hpp): a run that finishes while fewer than
// max_in_flight batches are being written goes at once, alone if need be; runs that finish
// while the slots are busy go together, up to max_batch, as soon as a slot frees.
//
// One run's problem stays its own: executions_record answers each run separately (in the
// framed form, executions_record_framed: each caller gets its execution's JSON as the database
// wrote it, not parsed and written out again). When the
// whole statement fails on something the database refuses (a constraint, invalid text), the
// batch's runs are written again one by one, so only the run at fault gets the error.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "group_commit.hpp"
#include "metrics.hpp"
#include "pg/pool.hpp"

namespace flowgres::daemon {

// executions_record_framed's answer for `runs` runs, one result each, in order: ok with values =
// {the execution}, or its error as a statement's (sql_error with its SQLSTATE). An answer that
// is not `runs` well-formed frames fails every run (INTERNAL_ERROR's SQLSTATE).
std::vector<pg::JobResult> read_recorded_runs(std::string_view answer, size_t runs);

class RunRecorder {
public:
    // One run's recording: ok with values = {the execution as recorded (JSON)}, or the error,
    // as a statement's (sql_error with its SQLSTATE, or unavailable).
    using Done = std::function<void(pg::JobResult &&)>;

    RunRecorder(pg::Pool &pool, WorkerMetrics &metrics, size_t max_batch, size_t max_in_flight)
        : pool_(pool), metrics_(metrics), batches_(max_batch, max_in_flight, [this](auto batch) { write(std::move(batch)); }) {}

    // `run`: one element of executions_record's array, as JSON text.
    void record(std::string run, Done done);

private:
    struct Pending {
        std::string run;
        Done done;
        std::chrono::steady_clock::time_point asked = std::chrono::steady_clock::now();
    };

    void write(std::vector<Pending> batch);

    pg::Pool &pool_;
    WorkerMetrics &metrics_;
    GroupCommit<Pending> batches_;
};

}  // namespace flowgres::daemon
